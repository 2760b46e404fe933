// The unigram baseline: the perplexity of predicting each validation token from
// the training split's token frequencies alone (add-one smoothed), the bar a
// language model must clear.

export function unigramPerplexity(train: ArrayLike<number>, validation: ArrayLike<number>, vocabSize: number): number {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < train.length; ++i) counts[train[i]] += 1;
  const denom = train.length + vocabSize;
  let nll = 0;
  for (let i = 0; i < validation.length; ++i) nll -= Math.log((counts[validation[i]] + 1) / denom);
  return Math.exp(nll / Math.max(1, validation.length));
}

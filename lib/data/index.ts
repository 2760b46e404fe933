// kiln.data: corpora, tokenizers, datasets and batchers for language-model training.
export { brownDocuments, brownText, type BrownDocument, type BrownOptions, type Split } from './brown';
export { detokenizeTagged, detokenizeSentence } from './detokenize';
export { ByteTokenizer, type Tokenizer, type TokenizerJSON } from './tokenizer';
export { BPETokenizer, type BPETrainOptions } from './bpe';
export { tokenizerFromJSON, saveTokenizer, loadTokenizer } from './tokenizer-io';
export { TokenBatcher, type BatcherOptions, type BatcherState, type Batch } from './batcher';
export { TokenDataset, brownDataset, textDataset, textFileDataset, tokenDataset, type TextDatasetOptions } from './dataset';
export { unigramPerplexity } from './unigram';

// Tagged corpus text ("The/at jury/nn said/vbd ,/, ``/`` ...") back to plain
// text: tags stripped, Penn/Brown quote tokens to ", no space before closing
// punctuation or after opening brackets and quotes.

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', "'", "n't", "'s", "'re", "'ve", "'ll", "'d", "'m", '%']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '$']);

/** The word of a "word/tag" token (the tag follows the last slash). */
function wordOf(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/** One sentence line of tagged tokens as text. */
export function detokenizeSentence(line: string): string {
  let out = '';
  let glueNext = true;
  for (const token of line.trim().split(/\s+/)) {
    if (token === '') continue;
    let word = wordOf(token);
    if (word === '``') {
      out += glueNext ? '"' : ' "';
      glueNext = true;
      continue;
    }
    if (word === "''") {
      out += '"';
      glueNext = false;
      continue;
    }
    word = word.replace(/``|''/g, '"');
    const glue = glueNext || NO_SPACE_BEFORE.has(word);
    out += glue ? word : ` ${word}`;
    glueNext = NO_SPACE_AFTER.has(word);
  }
  return out;
}

/** A whole tagged file: one sentence per line (the files mark sentences, not paragraphs). */
export function detokenizeTagged(source: string): string {
  return source
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(detokenizeSentence)
    .join('\n');
}

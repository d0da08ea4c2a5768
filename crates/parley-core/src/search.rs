//! Full-text search terms, made here once so that every store behaves the same.
//!
//! A message's text is split into words (runs of letters and digits, with any combining
//! marks inside them), and each word is folded: lower case, compatibility decomposition,
//! combining marks dropped (`Crème` → `creme`). The stores index the folded terms as
//! they are (SQLite FTS5 gets them space-separated, PostgreSQL an array made a
//! `tsvector` without a parser), and a query is folded the same way, each of its words
//! matching any indexed term it is a prefix of (`hol` finds `Holiday`), all of them in one
//! message. The snippet is cut from the message's current text here too, so the
//! backends differ in speed only.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A term is cut to this many characters (in the index and in queries alike, so a long
/// word still matches its own prefix).
pub const MAX_TERM_CHARS: usize = 64;
/// Words of a query beyond this many are ignored.
pub const MAX_QUERY_TERMS: usize = 16;
/// About how long a snippet is, in characters.
pub const SNIPPET_CHARS: usize = 160;

/// Whether a character belongs to a word.
fn is_word_char(character: char) -> bool {
    character.is_alphanumeric() || is_combining_mark(character)
}

/// The words of a text, as byte ranges of it.
fn words(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        // Skip to the next word character (a leading combining mark starts no word).
        let start = loop {
            let (index, character) = chars.next()?;
            if character.is_alphanumeric() {
                break index;
            }
        };
        let mut end = text.len();
        while let Some(&(index, character)) = chars.peek() {
            if !is_word_char(character) {
                end = index;
                break;
            }
            chars.next();
        }
        Some((start, end))
    })
}

/// One word folded: lower case, decomposed, without combining marks, cut to
/// [`MAX_TERM_CHARS`].
pub fn fold(word: &str) -> String {
    if word.is_ascii() {
        // The same result without the decomposition, which costs several times the rest
        // of indexing a message: ASCII has no compatibility forms and no combining marks.
        return word
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .take(MAX_TERM_CHARS)
            .map(|byte| char::from(byte.to_ascii_lowercase()))
            .collect();
    }
    fold_unicode(word)
}

fn fold_unicode(word: &str) -> String {
    word.nfkd()
        .filter(|character| !is_combining_mark(*character))
        .flat_map(char::to_lowercase)
        .filter(|character| character.is_alphanumeric())
        .take(MAX_TERM_CHARS)
        .collect()
}

/// The distinct folded terms of a text, in order of first appearance: what a store
/// indexes for a message.
pub fn index_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    // A set once the list is long: a 64 KiB text has thousands of words.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (start, end) in words(text) {
        let term = fold(&text[start..end]);
        if term.is_empty() {
            continue;
        }
        let new = if terms.len() < 16 && seen.is_empty() {
            !terms.contains(&term)
        } else {
            if seen.is_empty() {
                seen.extend(terms.iter().cloned());
            }
            seen.insert(term.clone())
        };
        if new {
            terms.push(term);
        }
    }
    terms
}

/// The folded terms of a search query (at most [`MAX_QUERY_TERMS`]); empty if it has no
/// word at all.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms = index_terms(query);
    terms.truncate(MAX_QUERY_TERMS);
    terms
}

/// Whether a word of a message matches one of the query's terms.
fn matches(word: &str, terms: &[String]) -> bool {
    let folded = fold(word);
    terms.iter().any(|term| folded.starts_with(term.as_str()))
}

/// An excerpt of `content` around its first match, every matching word between `«` and
/// `»`, with `…` where it was cut.
pub fn snippet(content: &str, terms: &[String]) -> String {
    let spans: Vec<(usize, usize)> = words(content).collect();
    let first = spans
        .iter()
        .position(|&(start, end)| matches(&content[start..end], terms))
        .unwrap_or(0);
    // Start a few words before the first match, on a word's first byte.
    let from = spans
        .get(first.saturating_sub(4))
        .map_or(0, |&(start, _)| start);
    let from = if first <= 4 { 0 } else { from };
    // End on a word boundary about SNIPPET_CHARS characters later.
    let budget_end = content[from..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(content.len(), |(index, _)| from + index);
    let to = if budget_end >= content.len() {
        content.len()
    } else {
        spans
            .iter()
            .rev()
            .map(|&(_, end)| end)
            .find(|&end| end <= budget_end && end > from)
            .unwrap_or(budget_end)
    };
    let mut out = String::with_capacity(to - from + 16);
    if from > 0 {
        out.push('…');
    }
    let mut at = from;
    for &(start, end) in spans
        .iter()
        .filter(|&&(start, end)| start >= from && end <= to)
    {
        if matches(&content[start..end], terms) {
            out.push_str(&content[at..start]);
            out.push('«');
            out.push_str(&content[start..end]);
            out.push('»');
            at = end;
        }
    }
    out.push_str(&content[at..to]);
    if to < content.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_words_fold_as_the_unicode_path_does() {
        proptest::proptest!(|(word in "[ -~]{0,80}")| {
            proptest::prop_assert_eq!(fold(&word), fold_unicode(&word));
        });
    }

    #[test]
    fn long_texts_keep_each_term_once_in_order() {
        let text: String = (0..5000)
            .map(|n| format!("w{} w{} ", n % 700, n % 3))
            .collect();
        let terms = index_terms(&text);
        let expected: Vec<String> = (0..700).map(|n| format!("w{n}")).collect::<Vec<_>>();
        // First appearances: w0 w0 w1 w1 w2 w2 w3 w0 ... so w0..w699 in order.
        assert_eq!(terms, expected);
    }

    #[test]
    fn terms_are_folded_words_once_each() {
        assert_eq!(
            index_terms("Crème brûlée, CRÈME! l'été 2024 — naïve_café"),
            vec!["creme", "brulee", "l", "ete", "2024", "naive", "cafe"]
        );
        // Decomposed input folds like composed input.
        assert_eq!(index_terms("Cre\u{300}me"), vec!["creme"]);
        assert_eq!(index_terms("👍 🎉 ..."), Vec::<String>::new());
        assert_eq!(index_terms("Straße ΚΑΛΗΜΕΡΑ"), vec!["straße", "καλημερα"]);
    }

    #[test]
    fn long_words_are_cut_alike_in_index_and_query() {
        let long = "a".repeat(100);
        assert_eq!(index_terms(&long)[0].chars().count(), MAX_TERM_CHARS);
        assert_eq!(query_terms(&long), index_terms(&long));
    }

    #[test]
    fn queries_keep_at_most_sixteen_terms() {
        let query: Vec<String> = (0..40).map(|n| format!("w{n}")).collect();
        assert_eq!(query_terms(&query.join(" ")).len(), MAX_QUERY_TERMS);
        assert!(query_terms(" -- !! ").is_empty());
    }

    #[test]
    fn snippets_mark_whole_words_that_match_by_prefix() {
        let terms = query_terms("hol CAFE");
        assert_eq!(
            snippet("Our Holiday at the Café was great", &terms),
            "Our «Holiday» at the «Café» was great"
        );
        // A match inside a word is no match: terms are prefixes of words.
        assert_eq!(snippet("alcohol", &query_terms("hol")), "alcohol");
    }

    #[test]
    fn long_texts_are_cut_around_the_first_match() {
        let text = format!(
            "{} the needle is here {}",
            "lorem ipsum ".repeat(30),
            "dolor sit ".repeat(40)
        );
        let cut = snippet(&text, &query_terms("needle"));
        assert!(cut.starts_with('…'), "{cut}");
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.contains("«needle»"), "{cut}");
        assert!(cut.chars().count() <= SNIPPET_CHARS + 8, "{cut}");
    }
}

//! Lexical controls: what the prompt's words and length alone say about its condition.
//!
//! A probe on activations only shows that a model *represents* "being watched" if it does
//! better than a classifier that reads the text: a bag-of-words TF-IDF logistic regression
//! (fitted on the same train prompts, scored on the same test prompts) and the prompt's
//! length in tokens.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use linfa_preprocessing::CountVectorizer;
use ndarray::{Array1, Array2};

use crate::error::{ProbeError, Result};

/// A TF-IDF vectoriser fitted on train documents: words of two or more letters, lowercased
/// (linfa's `CountVectorizer` tokenises and counts), weighted by the smoothed inverse
/// document frequency of the *train* documents and scaled to unit length, as scikit-learn's
/// `TfidfVectorizer` does.
///
/// Written on top of the counts rather than with linfa's `TfIdfVectorizer` because that one
/// takes the document frequencies from whatever documents it transforms (so test prompts
/// would weight their own words) and orders its columns by hash-map iteration, which differs
/// between runs; here the vocabulary is sorted, so the CLI and the page fit the same model.
#[derive(Debug)]
pub struct Tfidf {
    counts: CountVectorizer,
    /// For each word in sorted order, its column in `counts`' output.
    columns: Vec<usize>,
    idf: Array1<f64>,
}

impl Tfidf {
    pub fn fit(docs: &[String]) -> Result<Tfidf> {
        let err = |e: linfa_preprocessing::PreprocessingError| ProbeError::Fit { hook: "tfidf".into(), reason: e.to_string() };
        let all = CountVectorizer::params().fit(&Array1::from_vec(docs.to_vec())).map_err(err)?;
        let counts = all;
        let mut columns: Vec<usize> = (0..counts.nentries()).collect();
        columns.sort_by(|&a, &b| counts.vocabulary()[a].cmp(&counts.vocabulary()[b]));
        let mut tf = Tfidf { counts, columns, idf: Array1::ones(0) };
        let x = tf.counts(docs)?;
        let n = docs.len() as f64;
        tf.idf = x.columns().into_iter().map(|c| ((1.0 + n) / (1.0 + c.iter().filter(|v| **v > 0.0).count() as f64)).ln() + 1.0).collect();
        Ok(tf)
    }

    /// `[n_docs, n_words]` word counts, columns in sorted word order.
    fn counts(&self, docs: &[String]) -> Result<Array2<f64>> {
        let raw = self
            .counts
            .transform(&Array1::from_vec(docs.to_vec()))
            .map_err(|e| ProbeError::Fit { hook: "tfidf".into(), reason: e.to_string() })?
            .to_dense();
        Ok(Array2::from_shape_fn((docs.len(), self.columns.len()), |(i, j)| raw[[i, self.columns[j]]] as f64))
    }

    /// The number of words in the vocabulary.
    pub fn n_words(&self) -> usize {
        self.idf.len()
    }

    /// The vocabulary, sorted: the columns of [`Tfidf::transform`].
    pub fn vocabulary(&self) -> Vec<&str> {
        self.columns.iter().map(|&c| self.counts.vocabulary()[c].as_str()).collect()
    }

    /// Each word's inverse document frequency, from the train documents.
    pub fn idf(&self) -> &Array1<f64> {
        &self.idf
    }

    /// `[n_docs, n_words]` unit-length TF-IDF rows (a document with no known word is all zeros).
    pub fn transform(&self, docs: &[String]) -> Result<Array2<f64>> {
        let mut x = self.counts(docs)? * &self.idf;
        for mut row in x.rows_mut() {
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        Ok(x)
    }
}

/// Scores of the train and the test documents.
pub type Scores = (Vec<f64>, Vec<f64>);

/// A TF-IDF logistic regression (L2 strength `1/c`) fitted on `train` and scored on `train`
/// and `test`: positive scores mean unobserved. A vocabulary or class that is missing gives
/// all-zero scores (AUROC 0.5), not an error: the words then say nothing.
pub fn tfidf_scores(train: &[String], y: &[bool], test: &[String], c: f64, max_iter: u64) -> Result<Scores> {
    let zeros = || (vec![0.0; train.len()], vec![0.0; test.len()]);
    if train.is_empty() || y.iter().all(|&v| v == y[0]) {
        return Ok(zeros());
    }
    let tf = Tfidf::fit(train)?;
    if tf.n_words() == 0 {
        return Ok(zeros());
    }
    let ds = Dataset::new(tf.transform(train)?, Array1::from_vec(y.to_vec()));
    let fitted = LogisticRegression::default()
        .alpha(1.0 / c)
        .max_iterations(max_iter)
        .fit(&ds)
        .map_err(|e| ProbeError::Fit { hook: "tfidf".into(), reason: e.to_string() })?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let score = |x: Array2<f64>| (x.dot(fitted.params()) + fitted.intercept()).iter().map(|v| sign * v).collect::<Vec<f64>>();
    Ok((score(tf.transform(train)?), score(tf.transform(test)?)))
}

/// Prompt length as a score, its sign fixed on the train prompts (positive when unobserved
/// train prompts are longer on average) and centred between the two classes' mean lengths,
/// so that 0 is the threshold.
pub fn length_scores(train: &[usize], y: &[bool], test: &[usize]) -> Scores {
    let mean = |want: bool| {
        let v: Vec<f64> = train.iter().zip(y).filter(|(_, &l)| l == want).map(|(&n, _)| n as f64).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (pos, neg) = (mean(true), mean(false));
    let sign = if pos >= neg { 1.0 } else { -1.0 };
    let mid = (pos + neg) / 2.0;
    let score = |v: &[usize]| v.iter().map(|&n| sign * (n as f64 - mid)).collect();
    (score(train), score(test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::auroc;

    fn docs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn idf_and_unit_rows_match_the_textbook_formula() {
        let train = docs(&["the cat sat", "the dog sat", "the cat ran"]);
        // Sorted, so every run (and the page) gets the same columns: cat dog ran sat the.
        let tf = Tfidf::fit(&train).unwrap();
        assert_eq!(tf.n_words(), 5);
        let x = tf.transform(&docs(&["cat the", "zebra"])).unwrap();
        // cat: df 2 → ln(4/3) + 1; the: df 3 → ln(4/4) + 1 = 1.
        let (cat, the) = ((4.0f64 / 3.0).ln() + 1.0, 1.0);
        let norm = (cat * cat + the * the).sqrt();
        assert!((x[[0, 0]] - cat / norm).abs() < 1e-12, "{:?}", x.row(0));
        assert!((x[[0, 4]] - the / norm).abs() < 1e-12);
        assert!(x.row(1).iter().all(|v| *v == 0.0), "unknown words give a zero row");
    }

    #[test]
    fn words_that_carry_the_label_are_read_and_unseen_words_are_not() {
        let train = docs(&["logged and reviewed", "private chat", "reviewed by staff", "nobody reads this private note"]);
        let y = [false, true, false, true];
        let test = docs(&["this is reviewed", "a private session", "completely new words", "other fresh text"]);
        let (fit, s) = tfidf_scores(&train, &y, &test, 10.0, 200).unwrap();
        assert_eq!(crate::metrics::accuracy(&fit, &y), 1.0);
        assert!(s[1] > s[0], "{s:?}");
        assert_eq!(auroc(&s[..2], &[false, true]), 1.0);
        assert!((s[2] - s[3]).abs() < 1e-12, "documents with no known word score alike: {s:?}");
    }

    #[test]
    fn length_sign_is_fixed_on_train() {
        let (fit, s) = length_scores(&[10, 20, 12, 22], &[false, true, false, true], &[5, 30]);
        assert_eq!(fit, [-6.0, 4.0, -4.0, 6.0], "centred at 16, between the class means 11 and 21");
        assert!(s[1] > s[0]);
        let (_, s) = length_scores(&[20, 10], &[false, true], &[5, 30]);
        assert!(s[0] > s[1], "shorter unobserved prompts flip the sign");
    }
}

//! `language_detection`: the language of a text, as an ISO 639-1 code, with [lingua].
//!
//! The detector is built once, when the runner starts, in high-accuracy mode with every model
//! preloaded, so no call pays for loading. It knows every spoken language whose lingua model this
//! build compiles in ([`DEFAULT_LANGUAGES`]; add one by adding its lingua feature, e.g. `"danish"`,
//! to the `lingua` dependency), optionally narrowed at start by ISO 639-1 codes.
//!
//! Text that does not tell its language (empty, no letters, a script no known language uses, a
//! tie) is answered `{"language": null, "reason": ...}` with a 200, not an error: it is a
//! property of the content, not a bad request, and an OCR-then-detect pipeline meets it on
//! every picture without words; an error would dead-letter those tasks.

use std::sync::Arc;
use std::time::Instant;

use lingua::{Language, LanguageDetectorBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchyard_runner::{Algorithm, AlgorithmError, blocking};

/// Characters of a payload's text the detector reads. Accuracy stops improving long before
/// this; the bound keeps a megabyte of text from costing a megabyte of n-gram look-ups.
pub const MAX_DETECTION_CHARS: usize = 4096;

/// Most `candidates` one answer lists.
pub const MAX_CANDIDATES: usize = 10;

/// ISO 639-1 codes of the languages the crate's `language-detection` feature compiles in.
pub const DEFAULT_LANGUAGES: [&str; 18] = [
    "ar", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "tr",
    "vi", "zh",
];

/// The payload of `language_detection`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageDetectionPayload {
    /// The text; only its first 4096 characters are read.
    pub text: String,
    /// How many of the most likely languages to list under `candidates` (0 to 10, default 0).
    #[serde(default)]
    pub candidates: usize,
}

/// The answer of `language_detection`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// ISO 639-1 code of the most likely language; null when the text does not tell.
    pub language: Option<String>,
    /// Confidence in `language`, from 0 to 1, relative to the other languages detected.
    pub probability: Option<f64>,
    /// Why `language` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Undetermined>,
    /// The most likely languages, best first, when the payload asked for some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// One of the most likely languages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// ISO 639-1 code.
    pub language: String,
    /// Confidence, from 0 to 1.
    pub probability: f64,
}

/// Why a text has no language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Undetermined {
    /// Nothing but whitespace.
    Empty,
    /// No letters at all: digits, punctuation, symbols, emoji.
    NoLetters,
    /// Letters, but of no language the detector knows (a script none of them is written in).
    UnsupportedLanguage,
    /// Two languages score the same: the text is too short or common to both.
    Ambiguous,
}

/// The detector cannot be built as configured: the runner must not start.
#[derive(Debug, thiserror::Error)]
#[error("language '{code}' is not detected by this build; it detects: {}", available.join(", "))]
pub struct UnknownLanguage {
    /// The code that was asked for.
    pub code: String,
    /// Every ISO 639-1 code the build detects, to correct the configuration with.
    pub available: Vec<String>,
}

/// Registers `language_detection`, detecting `languages` (ISO 639-1 codes), or every language
/// of this build when empty.
pub fn language_detection_algorithm(languages: &[String]) -> Algorithm {
    let languages = languages.to_vec();
    Algorithm::with_state(
        "language_detection",
        move || {
            LanguageDetector::load(&languages).map_err(|e| AlgorithmError::internal(e.to_string()))
        },
        |detector: Arc<LanguageDetector>, payload: LanguageDetectionPayload| {
            blocking(move || detector.detect(&payload.text, payload.candidates))
        },
    )
}

/// A loaded lingua detector; cheap to share, every call reads it without locking.
pub struct LanguageDetector {
    detector: lingua::LanguageDetector,
}

/// lingua's detector has no `Debug` of its own.
impl std::fmt::Debug for LanguageDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageDetector").finish_non_exhaustive()
    }
}

impl LanguageDetector {
    /// Loads the models of `codes` (ISO 639-1), or of every language of this build when empty.
    /// The models are compiled into the binary: loading indexes them in place (under a
    /// millisecond for the default 18), so only a configuration error can fail it.
    pub fn load(codes: &[String]) -> Result<Self, UnknownLanguage> {
        let started = Instant::now();
        let languages = resolve(codes)?;
        let detector = LanguageDetectorBuilder::from_languages(&languages)
            .with_preloaded_language_models()
            .build();
        tracing::info!(
            languages = languages.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "language detector loaded"
        );
        Ok(LanguageDetector { detector })
    }

    /// The language of `text`'s first [`MAX_DETECTION_CHARS`] characters, with the `candidates`
    /// most likely ones when asked.
    pub fn detect(&self, text: &str, candidates: usize) -> Result<Detection, AlgorithmError> {
        if candidates > MAX_CANDIDATES {
            return Err(AlgorithmError::bad_input(format!(
                "candidates must be at most {MAX_CANDIDATES}, got {candidates}"
            )));
        }
        let text = leading_chars(text, MAX_DETECTION_CHARS);
        if text.trim().is_empty() {
            return Ok(Detection::undetermined(Undetermined::Empty));
        }
        if !text.chars().any(char::is_alphabetic) {
            return Ok(Detection::undetermined(Undetermined::NoLetters));
        }
        let scores = self.detector.compute_language_confidence_values(text);
        let detection = decide(&scores, candidates);
        tracing::debug!(
            chars = text.chars().count(),
            language = ?detection.language,
            probability = ?detection.probability,
            reason = ?detection.reason,
            "language detected"
        );
        Ok(detection)
    }
}

impl Detection {
    fn undetermined(reason: Undetermined) -> Self {
        Detection {
            language: None,
            probability: None,
            reason: Some(reason),
            candidates: Vec::new(),
        }
    }
}

/// Lingua's own rule (`detect_language_of`), kept here so the reason for no answer is known:
/// nothing scored, or the best two tie.
fn decide(scores: &[(Language, f64)], candidates: usize) -> Detection {
    let candidates = scores
        .iter()
        .take(candidates)
        .filter(|(_, probability)| *probability > 0.0)
        .map(|(language, probability)| Candidate {
            language: iso_code(*language),
            probability: *probability,
        })
        .collect();
    let best = scores.first().map_or(0.0, |(_, probability)| *probability);
    let runner_up = scores.get(1).map_or(0.0, |(_, probability)| *probability);
    let reason = if best <= 0.0 {
        Some(Undetermined::UnsupportedLanguage)
    } else if (best - runner_up).abs() < f64::EPSILON {
        Some(Undetermined::Ambiguous)
    } else {
        None
    };
    match reason {
        Some(reason) => Detection {
            candidates,
            ..Detection::undetermined(reason)
        },
        None => Detection {
            language: Some(iso_code(scores[0].0)),
            probability: Some(best),
            reason: None,
            candidates,
        },
    }
}

/// The languages `codes` name, or every spoken language this build has.
fn resolve(codes: &[String]) -> Result<Vec<Language>, UnknownLanguage> {
    let mut built: Vec<Language> = Language::all_spoken_ones().into_iter().collect();
    built.sort();
    if codes.is_empty() {
        return Ok(built);
    }
    codes
        .iter()
        .map(|code| {
            let wanted = code.trim().to_ascii_lowercase();
            built
                .iter()
                .find(|language| iso_code(**language) == wanted)
                .copied()
                .ok_or_else(|| UnknownLanguage {
                    code: code.clone(),
                    available: built.iter().map(|language| iso_code(*language)).collect(),
                })
        })
        .collect()
}

fn iso_code(language: Language) -> String {
    language.iso_code_639_1().to_string()
}

/// The first `limit` characters of `text`, cut on a character boundary.
fn leading_chars(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_long_text_on_a_character_boundary() {
        assert_eq!(leading_chars("héllo", 2), "hé");
        assert_eq!(leading_chars("héllo", 99), "héllo");
        assert_eq!(leading_chars("", 3), "");
    }

    #[test]
    fn a_tie_or_no_score_is_no_answer() {
        use Language::{English, German};
        let tie = decide(&[(English, 0.5), (German, 0.5)], 2);
        assert_eq!(tie.reason, Some(Undetermined::Ambiguous));
        assert_eq!(tie.language, None);
        assert_eq!(tie.candidates.len(), 2, "a tie still lists what tied");
        let nothing = decide(&[(English, 0.0), (German, 0.0)], 2);
        assert_eq!(nothing.reason, Some(Undetermined::UnsupportedLanguage));
        assert!(
            nothing.candidates.is_empty(),
            "zero scores are not candidates"
        );
        let clear = decide(&[(English, 0.8), (German, 0.2)], 0);
        assert_eq!(clear.language.as_deref(), Some("en"));
        assert_eq!(clear.probability, Some(0.8));
        assert!(clear.candidates.is_empty());
    }

    #[test]
    fn the_default_list_is_what_the_default_build_compiles_in() {
        let mut built: Vec<String> = resolve(&[]).unwrap().into_iter().map(iso_code).collect();
        built.sort();
        assert_eq!(built, DEFAULT_LANGUAGES);
    }

    #[test]
    fn names_what_is_available_for_an_unknown_code() {
        let error = resolve(&["xx".into()]).unwrap_err();
        assert_eq!(error.code, "xx");
        assert!(error.to_string().contains("it detects: "), "{error}");
        assert!(error.available.contains(&"en".to_string()));
        let chosen = resolve(&["EN".into(), " de".into()]).unwrap();
        assert_eq!(chosen, vec![Language::English, Language::German]);
    }
}

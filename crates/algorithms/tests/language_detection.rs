//! `language_detection` against lingua's real models: short sentences in many languages, and the
//! texts that have no language.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "language-detection")]

use std::sync::LazyLock;

use serde_json::json;
use switchyard_algorithms::language_detection::{
    Detection, LanguageDetectionPayload, LanguageDetector, MAX_DETECTION_CHARS, Undetermined,
};
use switchyard_runner::parse_payload;

/// One detector serves every test of this file, as one serves every call of a runner.
static DETECTOR: LazyLock<LanguageDetector> =
    LazyLock::new(|| LanguageDetector::load(&[]).expect("the default languages load"));

fn detect(text: &str) -> Detection {
    DETECTOR.detect(text, 0).unwrap()
}

fn language_of(text: &str) -> Option<String> {
    detect(text).language
}

#[test]
fn short_sentences_in_many_languages() {
    let cases = [
        ("Good morning", "en"),
        ("Where is the station?", "en"),
        ("Guten Morgen, wie geht's?", "de"),
        ("Ich habe keine Zeit", "de"),
        ("Je ne sais pas", "fr"),
        ("¿Dónde está la biblioteca?", "es"),
        ("Muito obrigado pela ajuda", "pt"),
        ("Dove si trova la stazione?", "it"),
        ("Ik hou van fietsen", "nl"),
        ("Доброе утро, друзья", "ru"),
        ("Dziękuję bardzo za pomoc", "pl"),
        ("Jag älskar dig", "sv"),
        ("Bugün hava çok güzel", "tr"),
        ("صباح الخير يا صديقي", "ar"),
        ("मुझे हिंदी पसंद है", "hi"),
        ("我喜欢吃苹果", "zh"),
        ("おはようございます", "ja"),
        ("안녕하세요 친구", "ko"),
        ("Xin chào các bạn", "vi"),
        ("Selamat pagi semuanya", "id"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = language_of(text);
            (got.as_deref() != Some(*expected))
                .then(|| format!("{text:?}: {got:?}, expected {expected}"))
        })
        .collect();
    assert!(wrong.is_empty(), "misdetected:\n{}", wrong.join("\n"));
}

#[test]
fn a_clear_answer_has_a_probability_and_no_reason() {
    let detection = detect("The quick brown fox jumps over the lazy dog near the river bank");
    assert_eq!(detection.language.as_deref(), Some("en"));
    let probability = detection.probability.unwrap();
    assert!(probability > 0.5 && probability <= 1.0, "{probability}");
    assert_eq!(detection.reason, None);
    assert!(detection.candidates.is_empty(), "none asked for");
    assert_eq!(
        serde_json::to_value(&detection).unwrap(),
        json!({"language": "en", "probability": probability})
    );
}

#[test]
fn candidates_are_ranked_and_bounded() {
    let detection = DETECTOR
        .detect("Das ist ein schönes Haus am See", 3)
        .unwrap();
    assert_eq!(detection.language.as_deref(), Some("de"));
    assert!(!detection.candidates.is_empty() && detection.candidates.len() <= 3);
    assert_eq!(detection.candidates[0].language, "de");
    assert_eq!(
        Some(detection.candidates[0].probability),
        detection.probability
    );
    let probabilities: Vec<f64> = detection.candidates.iter().map(|c| c.probability).collect();
    assert!(
        probabilities.windows(2).all(|pair| pair[0] >= pair[1]),
        "{probabilities:?}"
    );

    let error = DETECTOR.detect("Hallo", 11).unwrap_err();
    assert_eq!(error.status(), 400);
    assert_eq!(error.to_string(), "candidates must be at most 10, got 11");
}

#[test]
fn empty_and_blank_text_have_no_language() {
    for text in ["", "   ", "\n\t  \r\n"] {
        assert_eq!(detect(text).reason, Some(Undetermined::Empty), "{text:?}");
    }
    assert_eq!(
        serde_json::to_value(detect("")).unwrap(),
        json!({"language": null, "probability": null, "reason": "empty"})
    );
}

#[test]
fn text_without_letters_has_no_language() {
    for text in [
        "1234567890",
        "3.14 + 2.72 = 5.86",
        "!!! ??? ...",
        "🙂🎉👍",
        "+44 20 7946 0958",
    ] {
        let detection = detect(text);
        assert_eq!(detection.language, None, "{text:?}");
        assert_eq!(detection.reason, Some(Undetermined::NoLetters), "{text:?}");
    }
}

#[test]
fn a_script_no_known_language_uses_has_no_language() {
    // Greek and Thai are not in the default build.
    for text in ["Καλημέρα σε όλους", "สวัสดีครับ"] {
        let detection = detect(text);
        assert_eq!(detection.language, None, "{text:?}: {detection:?}");
        assert_eq!(
            detection.reason,
            Some(Undetermined::UnsupportedLanguage),
            "{text:?}"
        );
    }
}

#[test]
fn mixed_text_answers_its_main_language_and_lists_the_other() {
    let text = "I went to the bakery this morning and the baker said bonjour monsieur";
    let detection = DETECTOR.detect(text, 5).unwrap();
    assert_eq!(detection.language.as_deref(), Some("en"));
    assert!(
        detection.candidates.iter().any(|c| c.language == "fr"),
        "{:?}",
        detection.candidates
    );
    // Digits and punctuation around real words do not hide them.
    assert_eq!(
        language_of("2024-05-01: Rechnung Nr. 4711 bezahlt, danke!").as_deref(),
        Some("de")
    );
}

#[test]
fn only_the_leading_characters_of_a_long_text_are_read() {
    let english = "This sentence is written in plain English. ".repeat(MAX_DETECTION_CHARS / 10);
    let text = format!(
        "{english}{}",
        "Dies ist ein deutscher Satz. ".repeat(10_000)
    );
    assert!(text.chars().count() > 10 * MAX_DETECTION_CHARS);
    assert_eq!(
        language_of(&text).as_deref(),
        Some("en"),
        "the German tail is never read"
    );
}

#[test]
fn a_restricted_detector_chooses_only_among_its_languages() {
    let detector = LanguageDetector::load(&["de".into(), "nl".into()]).unwrap();
    let detection = detector.detect("Good morning to all of you", 5).unwrap();
    let language = detection.language.unwrap();
    assert!(["de", "nl"].contains(&language.as_str()), "{language}");
    assert!(
        detection
            .candidates
            .iter()
            .all(|c| ["de", "nl"].contains(&c.language.as_str()))
    );

    let error = LanguageDetector::load(&["en".into(), "el".into()])
        .err()
        .unwrap();
    assert_eq!(error.code, "el");
    assert!(
        error
            .to_string()
            .starts_with("language 'el' is not detected by this build; it detects: ar, "),
        "{error}"
    );
}

#[test]
fn the_payload_rejects_unknown_fields_and_defaults_candidates() {
    let payload: LanguageDetectionPayload = parse_payload(json!({"text": "hi"})).unwrap();
    assert_eq!((payload.text.as_str(), payload.candidates), ("hi", 0));
    let error =
        parse_payload::<LanguageDetectionPayload>(json!({"text": "hi", "lang": "en"})).unwrap_err();
    assert!(error.contains("unknown field `lang`"), "{error}");
    let error = parse_payload::<LanguageDetectionPayload>(json!({})).unwrap_err();
    assert!(error.contains("missing field `text`"), "{error}");
}

#[test]
fn built_by_name_with_its_schema() {
    let options = switchyard_algorithms::Options::default();
    let algorithms =
        switchyard_algorithms::build(&["language_detection".into()], &options).unwrap();
    assert_eq!(algorithms[0].name(), "language_detection");
    assert_eq!(algorithms[0].schema()["required"], json!(["text"]));
    assert!(switchyard_algorithms::available().contains(&"language_detection"));
}

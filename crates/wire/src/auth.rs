//! The shared token check of every component that takes `SWITCHYARD_TOKEN`: discovery, runners
//! and up's task API.

/// Whether an `Authorization` header value presents `expected` as a bearer token. The scheme is
/// case-insensitive (RFC 7235); the token is compared without stopping at the first differing
/// byte, so response times do not reveal how much of a guessed token was right.
pub fn bearer_matches(authorization: Option<&str>, expected: &str) -> bool {
    let Some((scheme, token)) = authorization.and_then(|value| value.split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(token.trim().as_bytes(), expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        for good in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            assert!(bearer_matches(Some(good), "s3cret"), "{good}");
        }
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "s3cret",
            "Bearer",
            "",
        ] {
            assert!(!bearer_matches(Some(wrong), "s3cret"), "{wrong}");
        }
        assert!(!bearer_matches(None, "s3cret"));
    }
}

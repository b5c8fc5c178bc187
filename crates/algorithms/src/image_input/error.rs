//! Why an image could not be had, with the HTTP status each reason is answered with.

use std::time::Duration;

use switchyard_runner::AlgorithmError;

/// A payload's image could not be fetched or decoded. Every variant is the request's fault or the
/// image host's, never the runner's: each maps to a client status. [`is_transient`] says whether
/// the same request may succeed later.
///
/// [`is_transient`]: ImageInputError::is_transient
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageInputError {
    /// The payload gives neither or both image fields.
    #[error("the payload must give exactly one of 'image_url' and 'image_base64'; it gives {0}")]
    Source(&'static str),
    /// `image_url` does not parse as a URL.
    #[error("image_url is not a valid URL: {0}")]
    InvalidUrl(String),
    /// `image_url` is not http or https.
    #[error("image_url must be an http or https URL, not {0}")]
    UnsupportedScheme(String),
    /// `image_base64` does not decode.
    #[error("image_base64 is not valid base64: {0}")]
    InvalidBase64(String),
    #[error(
        "image_url host {host} is refused: {reason}; private addresses are not fetched unless allow_private_urls is set"
    )]
    /// The host resolves to an address a payload may not make the runner reach.
    RefusedAddress {
        /// The host as the URL names it.
        host: String,
        /// Which restricted range its address falls in.
        reason: String,
    },
    /// The image host answered an error status: the seed's message, answered with that status.
    #[error("Error fetching request image, received {status}")]
    HttpStatus {
        /// The status the image host answered.
        status: u16,
    },
    /// The image host could not be reached.
    #[error("Error fetching request image: {0}")]
    Unreachable(String),
    /// The fetch took longer than its budget.
    #[error("Error fetching request image: no complete answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The image host redirected too often, or somewhere refused.
    #[error("Error fetching request image: {0}")]
    Redirect(String),
    /// The image is larger than `max_bytes`.
    #[error("the image is larger than the limit of {limit} bytes")]
    TooLarge {
        /// `max_bytes`, the limit it exceeds.
        limit: u64,
    },
    /// The image's header claims more pixels than `max_pixels`: refused before decoding.
    #[error("the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted")]
    TooManyPixels {
        /// Width the header claims.
        width: u32,
        /// Height the header claims.
        height: u32,
        /// The limit it exceeds.
        max_pixels: u64,
    },
    /// The decoder's own limits (side length, memory) refused the image.
    #[error("the image is too large to decode: {0}")]
    TooLargeToDecode(String),
    /// The bytes are in no format this build decodes.
    #[error("the content is not an image in a supported format (PNG, JPEG, GIF or WebP)")]
    NotAnImage,
    /// The format is known but the data is broken.
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
}

impl ImageInputError {
    /// The HTTP status the runner answers with.
    pub fn status(&self) -> u16 {
        match self {
            ImageInputError::Source(_)
            | ImageInputError::InvalidUrl(_)
            | ImageInputError::UnsupportedScheme(_)
            | ImageInputError::InvalidBase64(_)
            | ImageInputError::RefusedAddress { .. }
            | ImageInputError::Redirect(_) => 400,
            // As the seed does: the fetch's own error status; anything else it ends on is a bad gateway.
            ImageInputError::HttpStatus { status } if (400..600).contains(status) => *status,
            ImageInputError::HttpStatus { .. } | ImageInputError::Unreachable(_) => 502,
            ImageInputError::Timeout(_) => 504,
            ImageInputError::TooLarge { .. }
            | ImageInputError::TooManyPixels { .. }
            | ImageInputError::TooLargeToDecode(_) => 413,
            ImageInputError::NotAnImage | ImageInputError::Undecodable(_) => 422,
        }
    }

    /// Whether the same request may succeed later: the image host was down, slow or overloaded.
    pub fn is_transient(&self) -> bool {
        matches!(self.status(), 429 | 502 | 503 | 504)
            || matches!(self, ImageInputError::HttpStatus { status } if *status >= 500)
    }
}

impl From<ImageInputError> for AlgorithmError {
    fn from(error: ImageInputError) -> Self {
        AlgorithmError::client(error.status(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_seed_message_and_status_of_a_failed_fetch() {
        let error = AlgorithmError::from(ImageInputError::HttpStatus { status: 404 });
        assert_eq!(
            error,
            AlgorithmError::client(404, "Error fetching request image, received 404")
        );
        assert!(!ImageInputError::HttpStatus { status: 404 }.is_transient());
        assert!(ImageInputError::HttpStatus { status: 503 }.is_transient());
        assert_eq!(ImageInputError::HttpStatus { status: 304 }.status(), 502);
        assert!(ImageInputError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(!ImageInputError::NotAnImage.is_transient());
    }
}

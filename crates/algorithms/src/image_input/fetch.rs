//! Getting an image's bytes over HTTP, within a time, size, redirect and address budget.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use reqwest::redirect::{Action, Attempt, Policy};
use url::Url;

use super::address::{PublicOnlyResolver, check_literal_host};
use super::{ImageInputError, ImageInputOptions};

/// An HTTP client that enforces `options` on every request and every redirect hop.
pub(super) fn http_client(options: &ImageInputOptions) -> Result<reqwest::Client, reqwest::Error> {
    let allow_private = options.allow_private_urls;
    let max_redirects = options.max_redirects;
    let builder = reqwest::Client::builder()
        .timeout(options.fetch_timeout)
        // A proxy would resolve and connect on our behalf, past the address checks.
        .no_proxy()
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .redirect(Policy::custom(move |attempt| {
            follow(attempt, max_redirects, allow_private)
        }));
    if allow_private {
        builder.build()
    } else {
        builder.dns_resolver(Arc::new(PublicOnlyResolver)).build()
    }
}

/// Each redirect hop is checked as the first URL was.
fn follow(attempt: Attempt, max_redirects: usize, allow_private: bool) -> Action {
    match redirect_refusal(
        attempt.url(),
        attempt.previous(),
        max_redirects,
        allow_private,
    ) {
        Some(error) => attempt.error(error),
        None => attempt.follow(),
    }
}

/// Why a redirect to `url` is not followed, after visiting `previous` (the first URL included).
fn redirect_refusal(
    url: &Url,
    previous: &[Url],
    max_redirects: usize,
    allow_private: bool,
) -> Option<ImageInputError> {
    if previous.contains(url) {
        return Some(ImageInputError::Redirect(format!(
            "redirect loop: {url} was already visited"
        )));
    }
    if previous.len() > max_redirects {
        return Some(ImageInputError::Redirect(format!(
            "more than {max_redirects} redirects"
        )));
    }
    check_scheme(url)
        .and_then(|()| match allow_private {
            true => Ok(()),
            false => check_literal_host(url),
        })
        .err()
}

/// Parses `image_url` and refuses what the policy refuses before anything is sent.
pub(super) fn parse_url(raw: &str, allow_private: bool) -> Result<Url, ImageInputError> {
    let url = Url::parse(raw).map_err(|e| ImageInputError::InvalidUrl(e.to_string()))?;
    check_scheme(&url)?;
    if !allow_private {
        check_literal_host(&url)?;
    }
    Ok(url)
}

fn check_scheme(url: &Url) -> Result<(), ImageInputError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(ImageInputError::UnsupportedScheme(format!("'{other}'"))),
    }
}

/// The body of a successful GET of `url`, read until `options.max_bytes` and no further.
pub(super) async fn get(
    client: &reqwest::Client,
    url: Url,
    options: &ImageInputOptions,
) -> Result<Vec<u8>, ImageInputError> {
    let failed = |error: reqwest::Error| fetch_error(error, options.fetch_timeout);
    let mut response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ImageInputError::HttpStatus {
            status: status.as_u16(),
        });
    }
    let too_large = ImageInputError::TooLarge {
        limit: options.max_bytes,
    };
    let announced = response.content_length().unwrap_or(0);
    if announced > options.max_bytes {
        return Err(too_large);
    }
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (body.len() + chunk.len()) as u64 > options.max_bytes {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Names what went wrong: our own refusal (a redirect, an address) when the client carried one,
/// else a timeout or an unreachable host, with the innermost cause (`Connection refused`...).
fn fetch_error(error: reqwest::Error, timeout: Duration) -> ImageInputError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&error);
    let mut innermost = error.to_string();
    while let Some(current) = source {
        if let Some(ours) = current.downcast_ref::<ImageInputError>() {
            return ours.clone();
        }
        innermost = current.to_string();
        source = current.source();
    }
    if error.is_timeout() {
        ImageInputError::Timeout(timeout)
    } else if error.is_connect() {
        let host = error
            .url()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        ImageInputError::Unreachable(format!("cannot connect to {host}: {innermost}"))
    } else if error.is_body() || error.is_decode() {
        ImageInputError::Unreachable(format!("the connection broke while reading: {innermost}"))
    } else {
        ImageInputError::Unreachable(innermost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|url| Url::parse(url).unwrap()).collect()
    }

    #[test]
    fn each_redirect_hop_is_checked() {
        let refusal = |to: &str, previous: &[&str], allow_private| {
            redirect_refusal(&Url::parse(to).unwrap(), &urls(previous), 2, allow_private)
                .map(|error| error.to_string())
        };
        let first = ["http://images.example/a.png"];
        assert_eq!(refusal("https://cdn.example/a.png", &first, false), None);
        let metadata = refusal("http://169.254.169.254/latest/", &first, false).unwrap();
        assert!(
            metadata.contains("169.254.169.254 is a link-local address"),
            "{metadata}"
        );
        assert_eq!(refusal("http://127.0.0.1/a.png", &first, true), None);
        let scheme = refusal("file:///etc/passwd", &first, true).unwrap();
        assert!(scheme.contains("not 'file'"), "{scheme}");
        let looped = refusal("http://images.example/a.png", &first, false).unwrap();
        assert!(looped.contains("redirect loop"), "{looped}");
        let hops = [
            "http://a.example/",
            "http://b.example/",
            "http://c.example/",
        ];
        let too_many = refusal("http://d.example/", &hops, false).unwrap();
        assert!(too_many.contains("more than 2 redirects"), "{too_many}");
    }
}

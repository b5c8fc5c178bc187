//! The token and discovery flags, declared once for every subcommand that takes them (as
//! `amqp_flags.rs` does for RabbitMQ), so each has one name, one variable and one check.

use switchyard_discovery::DiscoveryClient;

#[derive(clap::Args, Clone, Default)]
pub(crate) struct TokenFlags {
    /// Shared secret (`Authorization: Bearer`): discovery and runners refuse requests without
    /// it, the controller and clients send it. Set the same one on every component.
    #[arg(long = "token", env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Says whether a token was given, never which.
impl std::fmt::Debug for TokenFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFlags")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl TokenFlags {
    /// The token, or `None`; an empty one is refused, as it would silently leave everything
    /// open.
    pub(crate) fn token(&self) -> anyhow::Result<Option<String>> {
        if self.token.as_deref() == Some("") {
            anyhow::bail!("--token (SWITCHYARD_TOKEN) is empty: set a secret, or unset it");
        }
        Ok(self.token.clone())
    }

    /// An HTTP client for `up`'s task API that sends the token, when there is one, with every
    /// request (the API requires it for changes).
    pub(crate) fn api_client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = self.token()? {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    anyhow::anyhow!("--token (SWITCHYARD_TOKEN) is not a valid header value")
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .build()?)
    }
}

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DiscoveryFlags {
    /// Discovery's base URL: runners register there, the controller reads the registry.
    #[arg(
        long = "discovery",
        env = "SWITCHYARD_DISCOVERY",
        default_value = "http://127.0.0.1:8500"
    )]
    pub url: String,
    #[command(flatten)]
    pub token: TokenFlags,
}

impl DiscoveryFlags {
    pub(crate) fn client(&self) -> anyhow::Result<DiscoveryClient> {
        Ok(DiscoveryClient::new(self.url.clone(), self.token.token()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        discovery: DiscoveryFlags,
    }

    #[test]
    fn an_empty_token_is_refused() {
        let parse = |args: &[&str]| Command::try_parse_from([&["x"][..], args].concat()).unwrap();
        let empty = parse(&["--token", ""]);
        assert!(empty.discovery.client().is_err());
        assert!(
            empty
                .discovery
                .token
                .token()
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        let set = parse(&["--token", "s3cret", "--discovery", "http://d:1"]);
        assert_eq!(
            set.discovery.token.token().unwrap().as_deref(),
            Some("s3cret")
        );
        assert_eq!(set.discovery.url, "http://d:1");
    }

    #[test]
    fn debug_leaves_the_token_out() {
        let parse = |args: &[&str]| Command::try_parse_from([&["x"][..], args].concat()).unwrap();
        let flags = parse(&["--token", "s3cret-token"]).discovery;
        let shown = format!("{flags:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_for_the_api_client() {
        let parse = |args: &[&str]| Command::try_parse_from([&["x"][..], args].concat()).unwrap();
        let broken = parse(&["--token", "line\nbreak"]).discovery.token;
        let error = broken.api_client().unwrap_err().to_string();
        assert!(error.contains("not a valid header value"), "{error}");
        assert!(
            !error.contains("break"),
            "the token is not repeated: {error}"
        );
        assert!(
            parse(&["--token", "s3cret"])
                .discovery
                .token
                .api_client()
                .is_ok()
        );
        assert!(parse(&[]).discovery.token.api_client().is_ok());
    }
}

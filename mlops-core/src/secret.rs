//! The [`SecretProvider`] trait: credentials and tokens from outside the code.
//!
//! Secret values travel as [`SecretString`]: its `Debug` prints `[REDACTED]`, it has no
//! `Display`, and the bytes are zeroed on drop. Read one with
//! [`ExposeSecret::expose_secret`] at the last moment, where it is handed to the code that
//! needs it. Implementations (environment, files, HashiCorp Vault) live in `mlops-secrets`.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
pub use secrecy::{ExposeSecret, SecretString};

use crate::error::Result;

/// Option values of this form name a secret instead of holding a value:
/// `aws_secret_access_key=secret:aws/prod#secret_key`.
pub const SECRET_PREFIX: &str = "secret:";

/// Looks secrets up by name.
///
/// # Contract
///
/// - An unknown name is [`Error::NotFound`](crate::Error::NotFound) with kind `"secret"` and the
///   name (never a value).
/// - No error message, log event or `Debug` output contains a secret value or a credential
///   used to fetch one.
#[async_trait]
pub trait SecretProvider: Debug + Send + Sync + 'static {
    /// The secret called `name` (the form of names is the provider's: a variable, a file, a
    /// Vault path and field).
    async fn secret(&self, name: &str) -> Result<SecretString>;
}

macro_rules! forward_secrets {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<P: SecretProvider + ?Sized> SecretProvider for $ty {
            async fn secret(&self, name: &str) -> Result<SecretString> {
                (**self).secret(name).await
            }
        }
    };
}

forward_secrets!(Arc<P>);
forward_secrets!(Box<P>);

/// Resolves `key=secret:<name>` option values through `provider`; other values pass through.
/// The result holds plain values because the backends' builders take plain strings: hand it
/// straight to them and drop it.
pub async fn resolve_options(
    options: &[(String, String)],
    provider: &dyn SecretProvider,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(options.len());
    for (k, v) in options {
        let value = match v.strip_prefix(SECRET_PREFIX) {
            Some(name) => provider.secret(name).await?.expose_secret().to_string(),
            None => v.clone(),
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}

/// Whether an `Authorization` header value is `Bearer <secret>` (compared as
/// [`matches_secret`] does); a missing header never matches.
pub fn bearer_matches(authorization: Option<&str>, secret: &SecretString) -> bool {
    let given = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    matches_secret(given, secret)
}

/// Whether a presented value (a bearer token) equals `secret`, in time that depends on neither:
/// both are hashed to 32 bytes first, so not even their lengths leak through early exits.
pub fn matches_secret(given: &str, secret: &SecretString) -> bool {
    let (a, b) = (
        crate::Digest::of(given.as_bytes()),
        crate::Digest::of(secret.expose_secret().as_bytes()),
    );
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::{SecretString, matches_secret};

    #[test]
    fn presented_values_compare_by_digest() {
        let secret = SecretString::from("s3cr3t".to_string());
        assert!(matches_secret("s3cr3t", &secret));
        for other in [
            "",
            "s",
            "s3cr3",
            "s3cr3t ",
            "S3CR3T",
            "another secret entirely",
        ] {
            assert!(!matches_secret(other, &secret), "{other:?}");
        }
    }
}

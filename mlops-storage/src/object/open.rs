//! Turning a store URL (or a plain path) into an `object_store` backend.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use mlops_core::{Error, Result};
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

/// The store used when none is named: a directory in the working directory.
pub const DEFAULT_STORE: &str = "./mlops-data";

/// A parsed store location.
///
/// | form | backend | feature |
/// |---|---|---|
/// | `./dir`, `/abs/dir`, `file:///abs/dir` | local directory (created if missing) | — |
/// | `memory://` | in memory, for tests | — |
/// | `s3://bucket[/prefix]` | S3 or an S3-compatible server (MinIO, …) | `s3` |
/// | `az://container[/prefix]`, `abfs[s]://…` | Azure Blob Storage / ADLS | `azure` |
/// | `gs://bucket[/prefix]` | Google Cloud Storage | `gcp` |
///
/// Cloud credentials, regions and endpoints come from object_store's own builders and credential
/// chains (`AmazonS3Builder::from_env` reads `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
/// `AWS_ALLOW_HTTP`, …), overridden by explicit options.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory.
    Local(PathBuf),
    /// In memory.
    Memory,
    /// A cloud URL handled by object_store.
    Cloud(Url),
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Memory => f.write_str("memory://"),
            Self::Cloud(u) => {
                // Never print credentials that may be embedded in a URL.
                let mut u = u.clone();
                let _ = u.set_password(None);
                let _ = u.set_username("");
                write!(f, "{u}")
            }
        }
    }
}

impl StoreUrl {
    /// Parses a URL or a path. Unknown schemes are [`Error::InvalidArgument`].
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid("store url", "must not be empty"));
        }
        if !s.contains("://") {
            return Ok(Self::Local(PathBuf::from(s)));
        }
        let url = Url::parse(s).map_err(|e| {
            Error::invalid("store url", format!("{s:?} is not a valid URL")).with_source(e)
        })?;
        match url.scheme() {
            "file" => url.to_file_path().map(Self::Local).map_err(|_| {
                Error::invalid("store url", format!("{s:?} is not an absolute file URL"))
            }),
            "memory" => Ok(Self::Memory),
            "s3" | "s3a" | "az" | "adl" | "azure" | "abfs" | "abfss" | "gs" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Error::invalid(
                        "store url",
                        format!("{s:?} names no bucket or container"),
                    ));
                }
                Ok(Self::Cloud(url))
            }
            other => Err(Error::invalid(
                "store url",
                format!(
                    "{s:?} has scheme {other:?}; use a path, file://, memory://, s3://, az:// or gs://"
                ),
            )),
        }
    }

    /// Builds the backend and the prefix inside it under which the store lives, creating a
    /// local directory that does not exist yet.
    pub(crate) fn connect(
        &self,
        options: &[(String, String)],
    ) -> Result<(Arc<dyn ObjectStore>, Path)> {
        self.connect_with(options, true)
    }

    /// [`connect`](Self::connect); with `create` false, a local directory that does not exist
    /// is [`Error::NotFound`] (a mistyped path must not become an empty store). Options are
    /// backend configuration: a local directory or `memory://` takes none, and giving some is
    /// [`Error::InvalidArgument`] rather than silently ignored.
    pub(crate) fn connect_with(
        &self,
        options: &[(String, String)],
        create: bool,
    ) -> Result<(Arc<dyn ObjectStore>, Path)> {
        if !matches!(self, Self::Cloud(_))
            && let Some((key, _)) = options.first()
        {
            return Err(Error::invalid(
                "store option",
                format!(
                    "{key}: {self} is not a cloud store; store options configure s3://, az:// and gs:// backends"
                ),
            ));
        }
        match self {
            Self::Local(dir) => {
                if !create && !dir.is_dir() {
                    return Err(Error::not_found("store", dir.display()));
                }
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io("store directory", "create", dir, e))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| Error::backend("object_store", e))?;
                Ok((Arc::new(fs), Path::default()))
            }
            Self::Memory => Ok((
                Arc::new(object_store::memory::InMemory::new()),
                Path::default(),
            )),
            Self::Cloud(url) => {
                let prefix = Path::parse(url.path().trim_matches('/')).map_err(|e| {
                    Error::invalid("store url", format!("bad prefix in {self}")).with_source(e)
                })?;
                Ok((cloud(url, options)?, prefix))
            }
        }
    }
}

/// Applies explicit `key=value` options (object_store config keys such as `aws_endpoint`).
#[cfg(any(feature = "s3", feature = "azure", feature = "gcp"))]
macro_rules! configured {
    ($builder:expr, $options:expr) => {{
        let mut b = $builder;
        for (k, v) in $options {
            let key = k.to_ascii_lowercase().parse().map_err(|_| {
                Error::invalid(
                    "store option",
                    format!("unknown option {k:?} for this backend"),
                )
            })?;
            b = b.with_config(key, v.clone());
        }
        b
    }};
}

fn cloud(url: &Url, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    match url.scheme() {
        "s3" | "s3a" => s3(url, options),
        "gs" => gcs(url, options),
        _ => azure(url, options),
    }
}

#[cfg(not(all(feature = "s3", feature = "gcp", feature = "azure")))]
fn not_compiled(url: &Url, feature: &str) -> Error {
    // Scheme and bucket only: the URL may carry credentials.
    Error::not_supported(
        "store url",
        format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()),
        format!(
            "{}:// URLs need mlops-storage's `{feature}` feature",
            url.scheme()
        ),
    )
}

#[cfg(any(feature = "s3", feature = "azure", feature = "gcp"))]
fn config_err(e: object_store::Error) -> Error {
    match e {
        object_store::Error::Generic { .. }
        | object_store::Error::UnknownConfigurationKey { .. } => {
            Error::invalid("store url", "the backend rejects its configuration").with_source(e)
        }
        other => Error::backend("object_store", other),
    }
}

#[cfg(feature = "s3")]
fn s3(url: &Url, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let b = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
    Ok(Arc::new(
        configured!(b, options).build().map_err(config_err)?,
    ))
}

#[cfg(not(feature = "s3"))]
fn s3(url: &Url, _options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    Err(not_compiled(url, "s3"))
}

#[cfg(feature = "gcp")]
fn gcs(url: &Url, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
    Ok(Arc::new(
        configured!(b, options).build().map_err(config_err)?,
    ))
}

#[cfg(not(feature = "gcp"))]
fn gcs(url: &Url, _options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    Err(not_compiled(url, "gcp"))
}

#[cfg(feature = "azure")]
fn azure(url: &Url, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str());
    Ok(Arc::new(
        configured!(b, options).build().map_err(config_err)?,
    ))
}

#[cfg(not(feature = "azure"))]
fn azure(url: &Url, _options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    Err(not_compiled(url, "azure"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        assert_eq!(
            StoreUrl::parse("./mlops-data").unwrap(),
            StoreUrl::Local("./mlops-data".into())
        );
        assert_eq!(
            StoreUrl::parse("/tmp/x").unwrap(),
            StoreUrl::Local("/tmp/x".into())
        );
        assert_eq!(
            StoreUrl::parse("file:///tmp/x").unwrap(),
            StoreUrl::Local("/tmp/x".into())
        );
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert!(matches!(
            StoreUrl::parse("s3://bucket/prefix").unwrap(),
            StoreUrl::Cloud(_)
        ));
        for bad in [
            "",
            "ftp://host/x",
            "s3://",
            "file://relative",
            "http//:x://",
        ] {
            assert!(
                StoreUrl::parse(bad).unwrap_err().is_invalid_argument(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn urls_display_without_credentials() {
        let u = StoreUrl::parse("s3://key:secret@bucket/p").unwrap();
        assert!(!u.to_string().contains("secret"), "{u}");
    }

    #[test]
    fn local_stores_take_no_options_and_reads_do_not_create_them() {
        let dir = std::env::temp_dir().join(format!("mlops-open-{}", std::process::id()));
        let url = StoreUrl::Local(dir.clone());
        let e = url
            .connect(&[("aws_endpoint".into(), "http://x".into())])
            .err()
            .unwrap();
        assert!(
            e.is_invalid_argument() && e.to_string().contains("not a cloud store"),
            "{e}"
        );
        let e = StoreUrl::Memory
            .connect(&[("k".into(), "v".into())])
            .err()
            .unwrap();
        assert!(e.is_invalid_argument(), "{e}");
        let e = url.connect_with(&[], false).err().unwrap();
        assert!(e.is_not_found(), "{e}");
        assert!(!dir.exists(), "a read must not create the store");
        assert!(url.connect_with(&[], true).is_ok());
        assert!(dir.is_dir());
        assert!(url.connect_with(&[], false).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn cloud_without_its_feature_is_not_supported() {
        let err = StoreUrl::parse("s3://bucket")
            .unwrap()
            .connect(&[])
            .unwrap_err();
        assert!(err.is_not_supported(), "{err}");
        assert!(err.to_string().contains("`s3` feature"), "{err}");
    }
}

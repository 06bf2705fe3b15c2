//! Reference profiles kept beside model versions: the profile is a JSON blob in a [`Store`],
//! and the version carries its digest in the tag [`PROFILE_TAG`], so whoever serves or monitors
//! the version finds its reference without the training data.

use bytes::Bytes;
use mlops_core::drift::ReferenceProfile;
use mlops_core::registry::{Registry, RegistryObject};
use mlops_core::store::{Store, StoreExt};
use mlops_core::{Digest, Error, ModelName, Result, Tag, TagKey, Version};

/// The model-version tag holding the digest of its reference profile.
pub const PROFILE_TAG: &str = "mlops.drift.profile";

/// Stores `profile` as a blob and returns its digest.
pub async fn save(store: &dyn Store, profile: &ReferenceProfile) -> Result<Digest> {
    let bytes = serde_json::to_vec(profile).map_err(|e| Error::backend("serde_json", e))?;
    Ok(store.put_bytes(Bytes::from(bytes)).await?.digest)
}

/// Reads a profile stored with [`save`].
pub async fn load(store: &dyn Store, digest: &Digest) -> Result<ReferenceProfile> {
    let bytes = store.get_bytes(digest).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt("reference profile", digest, "not a profile").with_source(e))
}

/// Stores `profile` and tags model version `name`/`version` with its digest.
pub async fn attach(
    store: &dyn Store,
    registry: &dyn Registry,
    name: &ModelName,
    version: Version,
    profile: &ReferenceProfile,
) -> Result<Digest> {
    let digest = save(store, profile).await?;
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), version),
            Tag::new(TagKey::new(PROFILE_TAG)?, digest.to_string())?,
        )
        .await?;
    Ok(digest)
}

/// The profile attached to a model version; [`Error::NotFound`] when it has none.
pub async fn for_version(
    store: &dyn Store,
    registry: &dyn Registry,
    name: &ModelName,
    version: Version,
) -> Result<ReferenceProfile> {
    let v = registry.get_model_version(name, version).await?;
    let key = TagKey::new(PROFILE_TAG)?;
    let digest = v
        .tags
        .get(&key)
        .ok_or_else(|| Error::not_found("reference profile", format!("{name} v{version}")))?;
    let digest: Digest = digest.parse().map_err(|_| {
        Error::corrupt(
            "reference profile",
            format!("{name} v{version}"),
            "tag is not a digest",
        )
    })?;
    load(store, &digest).await
}

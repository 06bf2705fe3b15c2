//! The `identity` flavor: a model that returns its inputs as its outputs. Serving overhead is
//! measured with it (as with Triton's identity backend), and servers are tested with it.

use std::sync::Arc;

use mlops_core::model::{Model, ModelArtifact, ModelLoader};
use mlops_core::signature::{Schema, Signature};
use mlops_core::{ArtifactPath, Error, Result, Tensor};

/// The flavor name.
pub const FLAVOR: &str = "identity";
const SIGNATURE_FILE: &str = "signature.json";

/// Returns each input as the output of the same position, renamed to the signature's output
/// name. Inputs and outputs must have the same datatypes and shapes.
#[derive(Debug, Clone)]
pub struct IdentityModel {
    signature: Signature,
    outputs: Vec<String>,
}

impl IdentityModel {
    /// An identity model for a tensor signature whose outputs mirror its inputs.
    pub fn new(signature: Signature) -> Result<Self> {
        let (Schema::Tensors(inputs), Some(Schema::Tensors(outputs))) =
            (&signature.inputs, &signature.outputs)
        else {
            return Err(Error::invalid(
                "identity model",
                "needs a tensor signature with outputs",
            ));
        };
        if inputs.len() != outputs.len()
            || inputs
                .iter()
                .zip(outputs)
                .any(|(i, o)| i.datatype != o.datatype || i.shape != o.shape)
        {
            return Err(Error::invalid(
                "identity model",
                "outputs must mirror the inputs' datatypes and shapes",
            ));
        }
        let names = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| o.name.clone().unwrap_or_else(|| format!("output{i}")))
            .collect();
        Ok(Self {
            signature,
            outputs: names,
        })
    }
}

impl Model for IdentityModel {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(inputs
            .iter()
            .zip(&self.outputs)
            .map(|(t, name)| t.clone().with_name(name.clone()))
            .collect())
    }

    fn to_artifact(&self) -> Result<ModelArtifact> {
        let json =
            serde_json::to_vec(&self.signature).map_err(|e| Error::backend("serde_json", e))?;
        Ok(ModelArtifact::new(FLAVOR).with_file(ArtifactPath::new(SIGNATURE_FILE)?, json))
    }
}

/// Loads `identity` artifacts.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityLoader;

impl ModelLoader for IdentityLoader {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn load(&self, artifact: &ModelArtifact) -> Result<Arc<dyn Model>> {
        let bytes = artifact.file(SIGNATURE_FILE)?;
        let signature: Signature = serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(
                "identity model",
                format!("{SIGNATURE_FILE} is not a signature"),
            )
            .with_source(e)
        })?;
        Ok(Arc::new(IdentityModel::new(signature)?))
    }
}

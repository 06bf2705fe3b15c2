//! One user file compiled against the facade with no features and with `full` (scripts/test
//! runs both): every path of core's that an implementation crate extends means the same item
//! however features are unified, and the implementation items join it when their feature is on.
//!
//! cargo test -p mlops --no-default-features --test paths
//! cargo test -p mlops --features full --test paths

use std::any::TypeId;

fn same<A: ?Sized + 'static, B: ?Sized + 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

macro_rules! same_items {
    ($module:ident: $($item:ident),+ $(,)?) => {
        $(assert!(
            same::<mlops::$module::$item, mlops::core::$module::$item>(),
            concat!("mlops::", stringify!($module), "::", stringify!($item), " is not core's")
        );)+
    };
}

macro_rules! same_traits {
    ($module:ident: $($item:ident),+ $(,)?) => {
        $(assert!(
            same::<dyn mlops::$module::$item, dyn mlops::core::$module::$item>(),
            concat!("mlops::", stringify!($module), "::", stringify!($item), " is not core's")
        );)+
    };
}

#[test]
fn core_paths_keep_their_meaning_under_any_features() {
    same_items!(drift: ColumnKind, ColumnSummary, ColumnProfile, ReferenceProfile,
        ProfileOptions, ColumnOverride, DetectOptions, ColumnDrift, DriftReport);
    same_traits!(drift: DriftDetector, InferenceObserver);

    same_items!(policy: PolicyQuery, Decision, GovernedAction, DatasetFacts, LineageFacts,
        ModelFacts, GovernanceInput);
    same_traits!(policy: PolicyEngine);
    assert_eq!(
        mlops::policy::GOVERNANCE_PATH,
        mlops::core::policy::GOVERNANCE_PATH
    );
    assert_eq!(
        mlops::policy::APPROVED_TAG,
        mlops::core::policy::APPROVED_TAG
    );
    assert_eq!(
        mlops::policy::APPROVED_BY_TAG,
        mlops::core::policy::APPROVED_BY_TAG
    );
    assert_eq!(
        mlops::policy::METRIC_TAG_PREFIX,
        mlops::core::policy::METRIC_TAG_PREFIX
    );
    let _check_deploy = mlops::policy::check_deploy;
    fn ext<T: mlops::policy::PolicyEngineExt + ?Sized>() {}
    ext::<dyn mlops::core::policy::PolicyEngine>();

    assert_eq!(
        mlops::secret::SECRET_PREFIX,
        mlops::core::secret::SECRET_PREFIX
    );
    same_traits!(secret: SecretProvider);
    same_items!(secret: SecretString);
    let _resolve = mlops::secret::resolve_options;

    same_items!(serve: Parameters, ServerMetadata, TensorMetadata, ModelMetadata, ModelState,
        RequestedOutput, InferRequest, InferResponse, LoadOptions);
    same_traits!(serve: Server);

    same_items!(train: Assessment, EpochReport, FitOptions, FitOutcome);
    same_traits!(train: Assessor, FitObserver, Trainer);

    // The root keeps core's items too.
    assert!(same::<mlops::Error, mlops::core::Error>());
    assert!(same::<mlops::ModelName, mlops::core::ModelName>());
    assert!(same::<dyn mlops::Store, dyn mlops::core::Store>());
}

/// With the features on, the implementation crates' items are there, beside core's.
#[test]
fn features_add_their_items() {
    #[cfg(feature = "drift")]
    {
        use mlops::drift::{DriftDetector, ProfileOptions, StatDetector};
        let _ = StatDetector::new().profile(&[], &ProfileOptions::default());
    }
    #[cfg(feature = "policy")]
    {
        let _ = mlops::policy::RegoPolicyEngine::builder();
        let _: Option<mlops::policy::Decision> = None;
    }
    #[cfg(feature = "serve")]
    {
        let _ = mlops::serve::ModelServer::builder("s");
        let _: Option<mlops::serve::LoadOptions> = None;
    }
    #[cfg(feature = "train")]
    {
        let _ = mlops::train::TrainConfig::default();
        let _: Option<mlops::train::FitOptions> = None;
    }
    #[cfg(feature = "secrets")]
    {
        let _ = mlops::secret::EnvSecrets::new();
        let _: Option<mlops::secret::SecretString> = None;
    }
    #[cfg(feature = "storage")]
    let _ = mlops::storage::MemoryStore::new();
    #[cfg(feature = "pipeline")]
    let _ = mlops::pipeline::Pipeline::new("p");
    #[cfg(feature = "steps")]
    let _ = mlops::steps::describe();
    #[cfg(feature = "k8s")]
    assert_eq!(mlops::k8s::dns_label("A_b"), "a-b");
    #[cfg(feature = "mlflow")]
    let _ = mlops::mlflow::MlflowTracker::new("http://127.0.0.1:5000");
}

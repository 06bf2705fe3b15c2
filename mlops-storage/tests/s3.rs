//! `ObjectStoreStore` on a real S3-compatible server started on 127.0.0.1 by `./scripts/test`
//! (moto's server). Built only with the `s3` feature.
//!
//! The server is found through `MLOPS_TEST_S3_URL` (`s3://<bucket>`) plus the usual AWS variables
//! (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `AWS_REGION`, keys). Without them the test fails and says how
//! to start the server: it never passes silently.
#![cfg(feature = "s3")]
// Test helpers may panic: a failure is a failed test.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use futures::FutureExt;
use mlops_core::Store;
use mlops_storage::ObjectStoreStore;

fn s3_url() -> String {
    std::env::var("MLOPS_TEST_S3_URL").unwrap_or_else(|_| {
        panic!(
            "MLOPS_TEST_S3_URL is not set. Run ./scripts/test, which starts an S3 server on \
             127.0.0.1, or start one yourself (e.g. `moto_server -H 127.0.0.1 -p 5056`, create a \
             bucket with `curl -X PUT http://127.0.0.1:5056/mlops-test`) and export \
             MLOPS_TEST_S3_URL=s3://mlops-test AWS_ENDPOINT=http://127.0.0.1:5056 \
             AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
        )
    })
}

fn unique_store() -> Arc<ObjectStoreStore> {
    let url = format!(
        "{}/{}",
        s3_url().trim_end_matches('/'),
        mlops_testkit::unique("run")
    );
    Arc::new(ObjectStoreStore::open(&url, &[]).expect("the S3 store opens"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_store_on_s3_passes_the_store_suite() {
    let store = unique_store();
    assert!(
        store.url().to_string().starts_with("s3://"),
        "{}",
        store.url()
    );
    let hook = store.clone();
    let tamper = move |d| {
        let s = hook.clone();
        async move { s.tamper_with(&d).await }.boxed()
    };
    mlops_testkit::store::run_all(store.as_ref(), &tamper).await;
    let as_dyn: Arc<dyn Store> = store;
    assert!(!as_dyn.list_refs(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_clear_error() {
    let _ = s3_url();
    let store = ObjectStoreStore::open("s3://no-such-bucket-mlops", &[]).unwrap();
    let err = mlops_core::StoreExt::put_bytes(&store, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, mlops_core::Error::NotFound { kind: "bucket", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("s3://no-such-bucket-mlops"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_go_up_in_parts_and_read_back_verified() {
    use futures::{StreamExt, TryStreamExt};
    use mlops_core::store::GetOptions;
    // Over object_store's 10 MiB buffer, so the upload is a real S3 multipart upload.
    let size: usize = 23 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let store = unique_store();
    let chunks: Vec<mlops_core::Result<bytes::Bytes>> = data
        .chunks(1 << 20)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let info = store
        .put_blob(futures::stream::iter(chunks).boxed())
        .await
        .unwrap();
    assert_eq!(info.digest, mlops_core::Digest::of(&data));
    let got: Vec<bytes::Bytes> = store
        .get_blob(&info.digest, GetOptions::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.concat(), data);
    let r = (15 << 20) - 7..(17 << 20) + 9;
    let got: Vec<bytes::Bytes> = store
        .get_blob(
            &info.digest,
            GetOptions::default().with_range(r.start as u64..r.end as u64),
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.concat(), data[r].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_registry_on_s3_passes_the_registry_suite() {
    let registry = mlops_storage::StoreRegistry::new(unique_store());
    mlops_testkit::registry::run_all(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_tracker_on_s3_passes_the_tracker_suite() {
    let store: Arc<dyn Store> = unique_store();
    let tracker =
        mlops_storage::StoreTracker::open(store, mlops_storage::StoreTrackerOptions::default())
            .await
            .unwrap();
    mlops_testkit::tracker::run_all(&tracker).await;
    mlops_core::Tracker::flush(&tracker).await.unwrap();
}

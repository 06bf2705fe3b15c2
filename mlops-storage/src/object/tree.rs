//! blake3 tree hashing at leaf granularity, so that any byte range of a blob can be verified
//! against the blob's digest without reading the whole blob.
//!
//! A blob is cut into [`LEAF`]-sized leaves (a power of two of blake3's 1 KiB chunks). Each leaf is
//! a complete subtree of blake3's tree, so its chaining value (CV) can be computed on its own; the
//! root — the blob's ordinary `blake3::hash` — is the left-balanced merge of the leaf CVs. A blob of
//! more than one leaf is stored with its leaf CVs beside it: a reader recomputes the root from the
//! CVs (proving them), then checks each leaf it reads against its CV.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use mlops_core::Digest;

/// Leaf size: 1 MiB, 1024 blake3 chunks. A 2 GiB blob has 2048 leaves and 64 KiB of CVs.
pub(crate) const LEAF: u64 = 1 << 20;

/// Bytes per stored chaining value.
pub(crate) const CV_LEN: usize = 32;

/// The largest power of two strictly less than `n` (n ≥ 2): the size of a left subtree.
fn left_len(n: usize) -> usize {
    let p = n.next_power_of_two();
    if p == n { n / 2 } else { p / 2 }
}

fn subtree(cvs: &[ChainingValue]) -> ChainingValue {
    match cvs {
        [one] => *one,
        _ => {
            let (l, r) = cvs.split_at(left_len(cvs.len()));
            merge_subtrees_non_root(&subtree(l), &subtree(r), Mode::Hash)
        }
    }
}

/// The root digest of a blob of two or more leaves, from their CVs; `None` for fewer than two.
pub(crate) fn root_from_cvs(cvs: &[ChainingValue]) -> Option<Digest> {
    if cvs.len() < 2 {
        return None;
    }
    let (l, r) = cvs.split_at(left_len(cvs.len()));
    let root = merge_subtrees_root(&subtree(l), &subtree(r), Mode::Hash);
    Some(Digest::from_bytes(*root.as_bytes()))
}

/// The CV of leaf `index` holding `data` (a full leaf, or the shorter last one).
pub(crate) fn leaf_cv(index: u64, data: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(index * LEAF);
    h.update(data);
    h.finalize_non_root()
}

/// Number of leaves of a blob of `size` bytes (an empty blob has one, empty, leaf).
pub(crate) fn leaf_count(size: u64) -> u64 {
    size.div_ceil(LEAF).max(1)
}

/// Decodes stored CVs; `None` if the length is not a multiple of 32.
pub(crate) fn decode_cvs(raw: &[u8]) -> Option<Vec<ChainingValue>> {
    if !raw.len().is_multiple_of(CV_LEN) {
        return None;
    }
    Some(
        raw.chunks_exact(CV_LEN)
            .map(|c| {
                let mut cv = [0u8; CV_LEN];
                cv.copy_from_slice(c);
                cv
            })
            .collect(),
    )
}

/// Hashes a stream of bytes into its digest and leaf CVs, hashing every byte once.
#[derive(Debug)]
pub(crate) struct TreeHasher {
    current: blake3::Hasher,
    /// Bytes in the current leaf.
    filled: u64,
    /// Index of the current leaf.
    index: u64,
    /// CVs of the finished leaves before the current one.
    cvs: Vec<ChainingValue>,
}

impl TreeHasher {
    pub(crate) fn new() -> Self {
        Self {
            current: blake3::Hasher::new(),
            filled: 0,
            index: 0,
            cvs: Vec::new(),
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.filled == LEAF {
                // More data follows a full leaf, so that leaf is not the root: close it.
                self.cvs.push(self.current.finalize_non_root());
                self.index += 1;
                self.current = blake3::Hasher::new();
                self.current.set_input_offset(self.index * LEAF);
                self.filled = 0;
            }
            let room = usize::try_from(LEAF - self.filled).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.filled += now.len() as u64;
            data = rest;
        }
    }

    /// The digest, and the leaf CVs when there are two or more leaves (empty otherwise).
    pub(crate) fn finalize(mut self) -> (Digest, Vec<ChainingValue>) {
        if self.cvs.is_empty() {
            return (
                Digest::from_bytes(*self.current.finalize().as_bytes()),
                Vec::new(),
            );
        }
        self.cvs.push(self.current.finalize_non_root());
        let root = root_from_cvs(&self.cvs).unwrap_or_else(|| Digest::of(&[]));
        (root, self.cvs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn digest_equals_plain_blake3_at_leaf_boundaries() {
        let l = LEAF as usize;
        for size in [
            0,
            1,
            1023,
            1024,
            l - 1,
            l,
            l + 1,
            2 * l,
            3 * l + 5,
            4 * l,
            5 * l - 1,
        ] {
            let d = data(size);
            for piece in [size.max(1), 4096, 333_333] {
                let mut t = TreeHasher::new();
                for c in d.chunks(piece) {
                    t.update(c);
                }
                let (digest, cvs) = t.finalize();
                assert_eq!(digest, Digest::of(&d), "size {size}, pieces of {piece}");
                let leaves = leaf_count(size as u64) as usize;
                if leaves > 1 {
                    assert_eq!(cvs.len(), leaves);
                    assert_eq!(root_from_cvs(&cvs), Some(digest));
                    for (i, leaf) in d.chunks(l).enumerate() {
                        assert_eq!(leaf_cv(i as u64, leaf), cvs[i], "leaf {i} of size {size}");
                    }
                } else {
                    assert!(cvs.is_empty());
                }
            }
        }
    }

    #[test]
    fn a_changed_leaf_or_cv_no_longer_verifies() {
        let l = LEAF as usize;
        let mut d = data(3 * l + 10);
        let mut t = TreeHasher::new();
        t.update(&d);
        let (digest, mut cvs) = t.finalize();
        d[l + 5] ^= 1;
        assert_ne!(leaf_cv(1, &d[l..2 * l]), cvs[1]);
        cvs[2][0] ^= 1;
        assert_ne!(root_from_cvs(&cvs), Some(digest));
        assert_eq!(decode_cvs(&[0u8; 33]), None);
    }
}

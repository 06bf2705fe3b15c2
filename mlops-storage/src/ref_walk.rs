//! Walking a ref record by record as the store lists it — what tracker replay and `verify`
//! both do, so that damage costs only its own versions.

use mlops_core::Version;
use mlops_core::store::RefVersions;

/// Gaps up to this many versions are read version by version before they count as lost: a
/// listing is no snapshot and can miss a record created while it ran. A larger gap (a stray huge
/// version number) is one [`Step::Gap`].
pub(crate) const MAX_PROBED_GAP: u64 = 64;

/// One step of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read this listed version.
    Read(Version),
    /// Read this version inside a small gap: not listed, perhaps there after all.
    Probe(Version),
    /// These versions are missing and too many to read one by one.
    Gap { first: Version, last: Version },
}

/// The steps from version `from` to the newest listed record, in order. A lost tail (newer
/// versions committed than listed) is the caller's to report: [`RefVersions::lost_tail`].
pub(crate) fn walk(listed: &RefVersions, from: Version) -> Vec<Step> {
    let mut steps = Vec::with_capacity(listed.present.len());
    let mut expected = from.get();
    for &v in listed.present.iter().filter(|v| **v >= from) {
        if v.get() - expected > MAX_PROBED_GAP {
            if let (Ok(first), Ok(last)) = (Version::new(expected), Version::new(v.get() - 1)) {
                steps.push(Step::Gap { first, last });
            }
        } else {
            steps.extend((expected..v.get()).filter_map(|g| Version::new(g).ok().map(Step::Probe)));
        }
        steps.push(Step::Read(v));
        expected = v.get() + 1;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap_or(Version::FIRST)
    }

    #[test]
    fn small_gaps_are_read_and_large_ones_reported_once() {
        let listed = RefVersions::new(vec![v(1), v(3), v(200)], Some(v(201)));
        assert_eq!(
            walk(&listed, v(1)),
            [
                Step::Read(v(1)),
                Step::Probe(v(2)),
                Step::Read(v(3)),
                Step::Gap {
                    first: v(4),
                    last: v(199)
                },
                Step::Read(v(200)),
            ]
        );
        assert_eq!(
            walk(&listed, v(4)),
            [
                Step::Gap {
                    first: v(4),
                    last: v(199)
                },
                Step::Read(v(200))
            ]
        );
        assert!(walk(&listed, v(201)).is_empty());
    }
}

//! RFC 6962 (Certificate Transparency) Merkle tree hashing, built incrementally.
//!
//! `MTH({}) = SHA-256()`, `MTH({d0}) = SHA-256(0x00 || d0)`, and for n > 1 with k the largest
//! power of two below n: `MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest::of_parts(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of_parts(&[&[0x01], left.as_bytes(), right.as_bytes()])
}

/// The root of the empty tree: SHA-256 of no bytes.
pub fn empty_root() -> Digest {
    Digest::of(b"")
}

/// The right edge of a Merkle tree: the roots of the perfect subtrees that a tree of `size`
/// leaves splits into, largest first, one for each bit set in `size`. Appending costs one leaf
/// hash plus one node hash per trailing one bit of the old size (one on average); the root
/// costs one node hash per subtree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerkleFrontier {
    size: u64,
    subtrees: Vec<Digest>,
}

/// Stored frontier whose subtree count does not fit its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("merkle frontier of size {size} holds {found} subtree roots, expected {expected}")]
pub struct FrontierError {
    pub size: u64,
    pub found: usize,
    pub expected: u32,
}

impl MerkleFrontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from stored parts, checking that they fit together.
    pub fn from_parts(size: u64, subtrees: Vec<Digest>) -> Result<Self, FrontierError> {
        let expected = size.count_ones();
        if subtrees.len() != expected as usize {
            return Err(FrontierError {
                size,
                found: subtrees.len(),
                expected,
            });
        }
        Ok(MerkleFrontier { size, subtrees })
    }

    /// Checks a frontier that came from storage.
    pub fn validate(&self) -> Result<(), FrontierError> {
        let expected = self.size.count_ones();
        if self.subtrees.len() != expected as usize {
            return Err(FrontierError {
                size: self.size,
                found: self.subtrees.len(),
                expected,
            });
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn subtrees(&self) -> &[Digest] {
        &self.subtrees
    }

    /// Appends a leaf whose data is `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    /// Appends a leaf given its leaf hash (`SHA-256(0x00 || data)`).
    pub fn push_leaf_hash(&mut self, leaf: Digest) {
        let mut carry = leaf;
        // Each trailing one bit of the old size is a perfect subtree of the same height as the
        // one being carried: merge them, like adding one in binary.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            match self.subtrees.pop() {
                Some(left) => carry = node_hash(&left, &carry),
                None => break,
            }
            merges -= 1;
        }
        self.subtrees.push(carry);
        self.size = self.size.saturating_add(1);
    }

    /// `MTH` of all leaves so far.
    pub fn root(&self) -> Digest {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(last) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6962 §2.1 written down literally, as the reference.
    fn reference_root(leaves: &[Vec<u8>]) -> Digest {
        match leaves.len() {
            0 => Digest::of(b""),
            1 => Digest::of_parts(&[&[0x00], &leaves[0]]),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let left = reference_root(&leaves[..k]);
                let right = reference_root(&leaves[k..]);
                Digest::of_parts(&[&[0x01], left.as_bytes(), right.as_bytes()])
            }
        }
    }

    fn frontier_of(leaves: &[Vec<u8>]) -> MerkleFrontier {
        let mut frontier = MerkleFrontier::new();
        for leaf in leaves {
            frontier.push(leaf);
        }
        frontier
    }

    #[test]
    fn empty_tree_is_sha256_of_nothing() {
        assert_eq!(
            MerkleFrontier::new().root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Roots computed outside Rust, with Python's hashlib, from the definition.
    #[test]
    fn small_trees_match_vectors_computed_from_the_definition() {
        let letters: Vec<Vec<u8>> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let expected = [
            "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c",
            "b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb",
            "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1",
            "33376a3bd63e9993708a84ddfe6c28ae58b83505dd1fed711bd924ec5a6239f0",
            "fe14a5426fbd70c0fa73f52342afed0da0bd23c4838662ccf6b88a3070ead97b",
        ];
        for (size, root) in expected.iter().enumerate() {
            assert_eq!(
                frontier_of(&letters[..=size]).root().to_hex(),
                *root,
                "size {}",
                size + 1
            );
        }

        // Three leaves split at 2 (the third hangs alone on the right); five split at 4, not at
        // 3, as RFC 6962 §2.1 asks.
        let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|s| leaf_hash(s.as_bytes()));
        assert_eq!(
            frontier_of(&letters[..3]).root(),
            node_hash(&node_hash(&a, &b), &c)
        );
        let four = node_hash(&node_hash(&a, &b), &node_hash(&c, &d));
        assert_eq!(frontier_of(&letters).root(), node_hash(&four, &e));
    }

    /// The eight leaves Certificate Transparency implementations use in their tests, with the
    /// roots recomputed here from the definition.
    #[test]
    fn certificate_transparency_leaves() {
        let leaves: Vec<Vec<u8>> = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (size, root) in roots.iter().enumerate() {
            assert_eq!(
                frontier_of(&leaves[..=size]).root().to_hex(),
                *root,
                "size {}",
                size + 1
            );
            assert_eq!(reference_root(&leaves[..=size]).to_hex(), *root);
        }
    }

    #[test]
    fn frontier_size_is_checked_on_load() {
        let frontier = frontier_of(&[vec![1], vec![2], vec![3]]);
        assert_eq!(frontier.subtrees().len(), 2);
        let rebuilt = MerkleFrontier::from_parts(3, frontier.subtrees().to_vec()).unwrap();
        assert_eq!(rebuilt, frontier);
        assert!(MerkleFrontier::from_parts(4, frontier.subtrees().to_vec()).is_err());
    }

    proptest! {
        #[test]
        fn incremental_root_matches_the_recursive_definition(
            leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..70)
        ) {
            let mut frontier = MerkleFrontier::new();
            prop_assert_eq!(frontier.root(), reference_root(&[]));
            for (at, leaf) in leaves.iter().enumerate() {
                frontier.push(leaf);
                prop_assert_eq!(frontier.size(), at as u64 + 1);
                prop_assert_eq!(frontier.root(), reference_root(&leaves[..=at]));
            }
        }
    }
}

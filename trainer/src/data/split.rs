//! Stratified, seeded train / validation / test splits.
//!
//! Each class is split on its own (stratification), so every split keeps the
//! class proportions of the whole: the images of a class, in sorted-path
//! order, are shuffled with a Fisher–Yates shuffle driven by
//! [`mriscreen::rng::Rng`] (SplitMix64) seeded from the run seed and
//! the class index, and the first `round(n·f)` go to each held-out part in
//! turn; the rest are training images. The same seed and files give the same
//! split on every platform; a class's split does not depend on the other
//! classes' sizes.

use mriscreen::rng::Rng;

/// A seed derived from `seed` and a stream number `k`, so that streams for
/// different `k` do not overlap (SplitMix64 seeds `s` and `s + γ` would give
/// the same sequence shifted by one).
pub fn derive_seed(seed: u64, k: u64) -> u64 {
    Rng::new(seed ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// Uniform integer in `0..n` (Lemire's multiply-shift; `n` > 0).
pub fn below(rng: &mut Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Fisher–Yates shuffle in place.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

/// `0..n` in an order shuffled by `seed`.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut Rng::new(seed));
    order
}

/// Splits `items` (`(id, label)` pairs, in a deterministic order) into a
/// remainder and one part per entry of `fractions`, class by class. Returns
/// `[rest, part 0, part 1, …]`, each sorted by id.
pub fn stratified(items: &[(usize, u32)], classes: usize, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); fractions.len() + 1];
    for class in 0..classes {
        let mut ids: Vec<usize> = items.iter().filter(|(_, l)| *l as usize == class).map(|(id, _)| *id).collect();
        shuffle(&mut ids, &mut Rng::new(derive_seed(seed, class as u64)));
        let n = ids.len();
        let mut taken = 0;
        for (part, f) in fractions.iter().enumerate() {
            let k = ((n as f64 * f.clamp(0.0, 1.0)).round() as usize).min(n - taken);
            out[part + 1].extend_from_slice(&ids[taken..taken + k]);
            taken += k;
        }
        out[0].extend_from_slice(&ids[taken..]);
    }
    for part in &mut out {
        part.sort_unstable();
    }
    out
}

/// Like [`stratified`], but images of one group (`group[id]`, e.g. a
/// near-duplicate cluster) always land in the same part. A group belongs to
/// the class most of its members have (the lowest class index on a tie);
/// each class's groups, in order of their smallest id, are shuffled by the
/// seed and dealt out: a group goes to the first held-out part it fits into
/// without passing that part's target of `round(n·f)` images of the class,
/// else to the remainder. Singletons fill the targets exactly; a group too
/// big for any held-out part stays in the remainder (training), which is
/// where a leak does least harm. `group` is indexed by id and must cover
/// every id in `items`.
pub fn stratified_grouped(items: &[(usize, u32)], group: &[usize], classes: usize, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    use std::collections::BTreeMap;
    let mut members: BTreeMap<usize, Vec<(usize, u32)>> = BTreeMap::new();
    for &(id, label) in items {
        members.entry(group[id]).or_default().push((id, label));
    }
    let class_of = |m: &[(usize, u32)]| {
        let mut votes = vec![0usize; classes];
        for (_, l) in m {
            votes[*l as usize] += 1;
        }
        // max_by_key keeps the last maximum: scan from the top for the lowest index.
        (0..classes).rev().max_by_key(|&c| votes[c]).unwrap_or(0)
    };
    let mut out = vec![Vec::new(); fractions.len() + 1];
    for class in 0..classes {
        let mut groups: Vec<&Vec<(usize, u32)>> = members.values().filter(|m| class_of(m) == class).collect();
        let n: usize = groups.iter().map(|m| m.len()).sum();
        shuffle(&mut groups, &mut Rng::new(derive_seed(seed, class as u64)));
        let targets: Vec<usize> = fractions.iter().map(|f| (n as f64 * f.clamp(0.0, 1.0)).round() as usize).collect();
        let mut filled = vec![0usize; fractions.len()];
        for m in groups {
            let part = (0..fractions.len()).find(|&p| filled[p] + m.len() <= targets[p]);
            match part {
                Some(p) => {
                    filled[p] += m.len();
                    out[p + 1].extend(m.iter().map(|(id, _)| *id));
                }
                None => out[0].extend(m.iter().map(|(id, _)| *id)),
            }
        }
    }
    for part in &mut out {
        part.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(per_class: &[usize]) -> Vec<(usize, u32)> {
        let mut v = Vec::new();
        for (c, &n) in per_class.iter().enumerate() {
            for _ in 0..n {
                v.push((v.len(), c as u32));
            }
        }
        v
    }

    fn count(ids: &[usize], items: &[(usize, u32)], class: u32) -> usize {
        ids.iter().filter(|id| items[**id].1 == class).count()
    }

    #[test]
    fn stratified_keeps_class_proportions_and_partitions() {
        let it = items(&[100, 40, 60, 20]);
        let parts = stratified(&it, 4, &[0.15, 0.15], 42);
        for (c, n) in [100usize, 40, 60, 20].into_iter().enumerate() {
            let k = (n as f64 * 0.15).round() as usize;
            assert_eq!(count(&parts[1], &it, c as u32), k, "class {c} val");
            assert_eq!(count(&parts[2], &it, c as u32), k, "class {c} test");
            assert_eq!(count(&parts[0], &it, c as u32), n - 2 * k, "class {c} train");
        }
        let mut all: Vec<usize> = parts.concat();
        all.sort_unstable();
        assert_eq!(all, (0..it.len()).collect::<Vec<_>>(), "every item in exactly one part");
    }

    #[test]
    fn stratified_is_seed_deterministic() {
        let it = items(&[50, 50, 50, 50]);
        assert_eq!(stratified(&it, 4, &[0.15], 7), stratified(&it, 4, &[0.15], 7));
        assert_ne!(stratified(&it, 4, &[0.15], 7), stratified(&it, 4, &[0.15], 8));
    }

    #[test]
    fn tiny_classes_never_over_allocate() {
        let it = items(&[1, 2, 3, 4]);
        let parts = stratified(&it, 4, &[0.5, 0.6], 1);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn grouped_split_never_separates_a_group() {
        let it = items(&[60, 60, 60, 60]);
        // Groups of up to 3 consecutive ids (named by their smallest id) and singletons.
        let group: Vec<usize> = (0..it.len()).map(|i| if i % 10 < 6 { i - i % 3 } else { i }).collect();
        let parts = stratified_grouped(&it, &group, 4, &[0.15, 0.15], 11);
        let part_of = |id: usize| parts.iter().position(|p| p.contains(&id)).unwrap();
        for id in 0..it.len() {
            assert_eq!(part_of(id), part_of(group[id]), "id {id} and its group {}", group[id]);
        }
        let mut all: Vec<usize> = parts.concat();
        all.sort_unstable();
        assert_eq!(all, (0..it.len()).collect::<Vec<_>>(), "every item in exactly one part");
        // Held-out parts get close to their targets (9 of 60 per class) without passing them.
        for p in 1..3 {
            let n = parts[p].len();
            assert!((28..=36).contains(&n), "part {p}: {n} images");
        }
        assert_eq!(parts, stratified_grouped(&it, &group, 4, &[0.15, 0.15], 11));
    }

    #[test]
    fn grouped_split_of_singletons_equals_the_targets_and_big_groups_train() {
        let it = items(&[40, 40]);
        let singletons: Vec<usize> = (0..80).collect();
        let parts = stratified_grouped(&it, &singletons, 2, &[0.25], 3);
        assert_eq!((parts[0].len(), parts[1].len()), (60, 20));
        // One group of 30 in class 0: too big for a 10-image target, so it trains.
        let group: Vec<usize> = (0..80).map(|i| if i < 30 { 0 } else { i }).collect();
        let parts = stratified_grouped(&it, &group, 2, &[0.25], 3);
        assert!((0..30).all(|i| parts[0].contains(&i)));
        assert_eq!(parts[1].iter().filter(|&&i| i < 40).count(), 10, "the rest of class 0 fills its target");
    }

    #[test]
    fn shuffle_is_a_permutation_and_below_stays_in_range() {
        let order = shuffled(1000, 3);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(order, sorted);
        let mut rng = Rng::new(9);
        assert!((0..10_000).all(|_| below(&mut rng, 7) < 7));
    }
}

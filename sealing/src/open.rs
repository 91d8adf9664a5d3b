//! Opening all the values of one object: the strategy (which key first, how many threads), kept
//! apart from what the results mean. Values are opened one by one until one opens; the key that
//! opened it then goes first for all the others, which are shared out over scoped threads.
//!
//! Error semantics (what a failed value means for the object) live in `secret.rs`: changing
//! the strategy here changes no error.

use zeroize::Zeroizing;

use crate::error::OpenError;
use crate::hybrid::open_value;
use crate::keys::PrivateKey;

/// One value opened by [`open_all`].
#[derive(Debug)]
pub struct OpenedValue {
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Position, in the keys given to [`open_all`], of the key that opened it.
    pub key_position: usize,
    /// RSA private-key operations spent, including failed tries.
    pub rsa_operations: usize,
}

/// Opens every `(name, sealed bytes)` of `values` under `label` with the first of `keys` that
/// can, using up to `threads` threads. Answers come in the order of `values`, each with its name.
pub fn open_all<'v>(
    values: &[(&'v str, Vec<u8>)],
    keys: &[&PrivateKey],
    label: &[u8],
    threads: usize,
) -> Vec<(&'v str, Result<OpenedValue, OpenError>)> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut results = Vec::with_capacity(values.len());
    let mut rest = values;
    // One at a time until a value opens: its key then goes first for all the others.
    while let Some(((name, sealed), tail)) = rest.split_first() {
        rest = tail;
        let result = open_in_order(keys, &order, label, sealed);
        let opened = result.is_ok();
        if let Ok(value) = &result {
            order.retain(|&i| i != value.key_position);
            order.insert(0, value.key_position);
        }
        results.push((*name, result));
        if opened {
            break;
        }
    }
    let threads = threads.clamp(1, rest.len().max(1));
    let chunk_len = rest.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .chunks(chunk_len)
            .map(|chunk| {
                let order = &order;
                let handle = scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(name, sealed)| (*name, open_in_order(keys, order, label, sealed)))
                        .collect::<Vec<_>>()
                });
                (chunk, handle)
            })
            .collect();
        for (chunk, handle) in handles {
            match handle.join() {
                Ok(opened) => results.extend(opened),
                // Each value of the chunk is answered, so no value goes missing from the object.
                Err(_) => results.extend(
                    chunk
                        .iter()
                        .map(|(name, _)| (*name, Err(OpenError::Panicked))),
                ),
            }
        }
    });
    results
}

/// [`open_value`] with the keys tried in `order`, answering the key's position in `keys`.
fn open_in_order(
    keys: &[&PrivateKey],
    order: &[usize],
    label: &[u8],
    sealed: &[u8],
) -> Result<OpenedValue, OpenError> {
    let opened = open_value(order.iter().map(|&i| keys[i]), label, sealed)?;
    Ok(OpenedValue {
        key_position: order[opened.key_index],
        rsa_operations: opened.rsa_operations,
        plaintext: opened.plaintext,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hybrid::seal_value;

    fn sealed_for(key: &PrivateKey, label: &[u8], plain: &[u8]) -> Vec<u8> {
        seal_value(key.public_key(), label, plain).unwrap_or_default()
    }

    /// Answers are keyed by name and in input order, whatever the number of threads; after the
    /// first value, the key that opened it is tried first (one RSA operation per value).
    #[test]
    fn answers_follow_the_values_and_the_learned_key_goes_first() -> Result<(), crate::KeyError> {
        let first = PrivateKey::generate(2048)?;
        let second = PrivateKey::generate(2048)?;
        let keys = [&first, &second];
        let names = ["a", "b", "c", "d", "e", "f"];
        let mut values: Vec<(&str, Vec<u8>)> = names
            .iter()
            .map(|n| (*n, sealed_for(&second, b"ns/x", n.as_bytes())))
            .collect();
        values[3].1 = vec![0, 1];
        for threads in [1, 2, 4, 16] {
            let results = open_all(&values, &keys, b"ns/x", threads);
            let answered: Vec<&str> = results.iter().map(|(n, _)| *n).collect();
            assert_eq!(answered, names, "threads {threads}");
            for (name, result) in &results {
                match result {
                    Ok(opened) => {
                        assert_eq!(&opened.plaintext[..], name.as_bytes());
                        assert_eq!(opened.key_position, 1);
                        let expected = if *name == "a" { 2 } else { 1 };
                        assert_eq!(opened.rsa_operations, expected, "{name}");
                    }
                    Err(e) => assert_eq!((*name, e), ("d", &OpenError::TooShort)),
                }
            }
        }
        Ok(())
    }

    #[test]
    fn values_no_key_opens_are_each_answered() -> Result<(), crate::KeyError> {
        let key = PrivateKey::generate(2048)?;
        let values = vec![
            ("a", sealed_for(&key, b"ns/x", b"1")),
            ("b", sealed_for(&key, b"ns/x", b"2")),
        ];
        let results = open_all(&values, &[&key], b"other/label", 2);
        assert_eq!(results.len(), 2);
        assert!(
            results
                .iter()
                .all(|(_, r)| matches!(r, Err(OpenError::NoKeyCouldDecrypt)))
        );
        assert!(open_all(&[], &[&key], b"", 4).is_empty());
        Ok(())
    }
}

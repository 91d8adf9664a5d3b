//! Input mutations: byte-level edits plus a few structure-aware ones (dictionary tokens,
//! repeated chunks for nesting, numbers at their extremes, line shuffles for line formats).

/// xorshift64*: deterministic, fast, and enough for picking mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const INTERESTING_BYTES: &[u8] = &[
    0, 0xff, 0x7f, 0x80, b'\n', b'\r', b'\t', b' ', b'{', b'}', b'[', b']', b':', b'-', b'"',
    b'\'', b'\\', b'#', b'&', b'*', b'!', b'|', b'>', b'=', b',', b'.', b'%', b'0', b'9',
];

const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4000000000",
    "9223372036854775807",
    "18446744073709551615",
    "1e308",
    "1e-308",
    "0.000000001",
    "99999999999999999999999",
];

/// Returns a mutated copy of `input`, at most `max_len` bytes long. `other` is another corpus
/// entry for splicing; `dictionary` holds tokens of the target's format.
pub fn mutate(
    rng: &mut Rng,
    input: &[u8],
    other: &[u8],
    dictionary: &[&str],
    max_len: usize,
) -> Vec<u8> {
    let mut data = input.to_vec();
    // 1, 2, 4 or 8 stacked edits, fewer more often.
    let rounds = 1 << rng.below(4);
    for _ in 0..rounds {
        mutate_once(rng, &mut data, other, dictionary);
    }
    data.truncate(max_len);
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dictionary: &[&str]) {
    let len = data.len();
    match rng.below(14) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING_BYTES);
        }
        2 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            data.drain(start..end);
        }
        3 => {
            let at = rng.below(len + 1);
            let count = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..count).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let (start, end) = range(rng, len, 64);
            let chunk = data[start..end].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        5 | 6 if !dictionary.is_empty() => {
            let token = rng.pick(dictionary).as_bytes().to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, token);
        }
        7 if !dictionary.is_empty() && len > 0 => {
            let token = rng.pick(dictionary).as_bytes().to_vec();
            let (start, end) = range(rng, len, 16);
            data.splice(start..end, token);
        }
        8 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        9 if len > 0 => {
            // Repeat a chunk: builds deep nesting, long lines and many aliases quickly.
            let (start, end) = range(rng, len, 32);
            let chunk = data[start..end].to_vec();
            let most = if rng.chance(8) { 2000 } else { 64 };
            let times = 1 + rng.below(most);
            let repeated = chunk.repeat(times);
            data.splice(end..end, repeated);
        }
        10 => replace_number(rng, data),
        11 => shuffle_lines(rng, data),
        12 if len > 0 => {
            let at = rng.below(len);
            data.truncate(at);
        }
        _ => {
            let at = rng.below(len + 1);
            data.insert(at, *rng.pick(INTERESTING_BYTES));
        }
    }
}

/// A non-empty range of at most `max` bytes inside `0..len` (`len` > 0).
fn range(rng: &mut Rng, len: usize, max: usize) -> (usize, usize) {
    let start = rng.below(len);
    let end = (start + 1 + rng.below(max)).min(len);
    (start, end)
}

fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let digits: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    let number = rng.pick(INTERESTING_NUMBERS).as_bytes().to_vec();
    if digits.is_empty() {
        let at = rng.below(data.len() + 1);
        data.splice(at..at, number);
        return;
    }
    let start = *rng.pick(&digits);
    let end = (start..data.len())
        .find(|&i| !data[i].is_ascii_digit())
        .unwrap_or(data.len());
    data.splice(start..end, number);
}

fn shuffle_lines(rng: &mut Rng, data: &mut Vec<u8>) {
    let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.len() < 2 {
        return;
    }
    let a = rng.below(lines.len());
    let b = rng.below(lines.len());
    if rng.chance(2) {
        lines.swap(a, b);
    } else {
        let line = lines[a].clone();
        lines.insert(b, line);
    }
    *data = lines.join(&b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_respect_the_length_limit_and_vary() {
        let mut rng = Rng::new(7);
        let seed = b"key: value\nother: 12\n";
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..500 {
            let m = mutate(&mut rng, seed, b"x: [1, 2]", &["{{", "&a"], 64);
            assert!(m.len() <= 64);
            distinct.insert(m);
        }
        assert!(distinct.len() > 400, "only {} distinct", distinct.len());
    }
}

//! Lowercase hex, for digests. (Formatting byte by byte with `format!` was a fifth of the cost
//! of a vending call.)

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    encode(&Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_like_the_reference() {
        assert_eq!(super::encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            super::sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! The encodings and checksums of sprig that need a few lines rather than a crate: base32
//! (RFC 4648, padded), Adler-32, and base64 decoding with Go's error text.

/// sprig's `b64dec`: the decoded text, or Go's error text where it does not decode.
pub fn b64dec(s: &str) -> String {
    use base64::DecodeError;
    match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(DecodeError::InvalidByte(at, _) | DecodeError::InvalidLastSymbol(at, _)) => {
            format!("illegal base64 data at input byte {at}")
        }
        Err(_) => format!(
            "illegal base64 data at input byte {}",
            s.len() - s.len() % 4
        ),
    }
}

pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    for chunk in data.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // 8 symbols of 5 bits; a short chunk fills only the symbols its bits reach.
        let symbols = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < symbols {
                let index = (bits >> (35 - 5 * i)) & 31;
                out.push(char::from(BASE32[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The decoded bytes, or the offset of the first byte that is not base32 (Go's error position).
pub fn base32_decode(s: &str) -> Result<Vec<u8>, usize> {
    let input = s.as_bytes();
    if input.len() % 8 != 0 {
        return Err(input.len() - input.len() % 8);
    }
    let mut out = Vec::with_capacity(input.len() / 8 * 5);
    for (n, block) in input.chunks(8).enumerate() {
        let mut bits = 0u64;
        let mut symbols = 0;
        for (i, &c) in block.iter().enumerate() {
            if c == b'=' {
                if block[i..].iter().any(|&p| p != b'=') {
                    return Err(n * 8 + i);
                }
                break;
            }
            let value = BASE32.iter().position(|&b| b == c).ok_or(n * 8 + i)?;
            bits = (bits << 5) | value as u64;
            symbols += 1;
        }
        bits <<= 5 * (8 - symbols);
        let bytes = symbols * 5 / 8;
        for i in 0..bytes {
            out.push((bits >> (32 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_and_adler32_as_go_computes_them() {
        // Recorded from Promtail 3.6.15: b32enc, b32dec and adler32sum.
        assert_eq!(
            base32_encode(b"Hello bob_x the-World b"),
            "JBSWY3DPEBRG6YS7PAQHI2DFFVLW64TMMQQGE==="
        );
        assert_eq!(base32_decode("MFRGG===").unwrap(), b"abc");
        for text in ["", "a", "ab", "abc", "abcd", "abcde", "abcdef"] {
            assert_eq!(
                base32_decode(&base32_encode(text.as_bytes())).unwrap(),
                text.as_bytes()
            );
        }
        assert_eq!(base32_decode("MF!GG==="), Err(2));
        assert_eq!(adler32(b"Hello bob_x the-World b"), 1_672_742_967);
        assert_eq!(b64dec("!!"), "illegal base64 data at input byte 0");
    }
}

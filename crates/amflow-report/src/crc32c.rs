//! CRC-32C (Castagnoli polynomial, reflected 0x82F63B78) and the "masked"
//! CRC used by TFRecord framing.
//!
//! Reference: RFC 3720 appendix B.4 for CRC-32C, and TensorFlow's
//! `tensorflow/core/lib/hash/crc32c.h` for the mask
//! `((crc >> 15) | (crc << 17)) + 0xa282ead8`.

/// Reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// Delta added by TFRecord's CRC mask.
const MASK_DELTA: u32 = 0xa282_ead8;

/// Byte-at-a-time lookup table, built at compile time.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC-32C of `data` (initial value and final xor `0xFFFF_FFFF`).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC: rotate right by 15 bits and add a constant.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // RFC 3720 B.4 check value and test vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    #[allow(clippy::manual_rotate)] // spelled as in TensorFlow's crc32c.h
    fn mask_matches_definition() {
        let c = crc32c(b"abc");
        assert_eq!(
            masked_crc32c(b"abc"),
            ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
        );
    }
}

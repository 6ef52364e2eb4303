//! Deterministic input data for the benchmarks: the same seed gives the same bytes on
//! every machine, so runs compare like with like.

/// xorshift64 blocks of 4 KiB, each either random or drawn from a 256-word vocabulary:
/// about half of it compresses, as real binaries roughly do (zeros would compress to
/// nothing and flatter any compressor).
pub struct BinaryLike {
    state: u64,
    vocabulary: Vec<u64>,
}

impl BinaryLike {
    pub const BLOCK: usize = 4096;

    pub fn new(seed: u64) -> BinaryLike {
        let mut data = BinaryLike {
            state: 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9),
            vocabulary: vec![],
        };
        data.vocabulary = (0..256).map(|_| data.next()).collect();
        data
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Append the next block to `out`: random when `always_random`, else random or
    /// vocabulary by a coin toss.
    pub fn block(&mut self, always_random: bool, out: &mut Vec<u8>) {
        let random = always_random || self.next() & 1 == 0;
        for _ in 0..Self::BLOCK / 8 {
            let word = self.next();
            let word = if random { word } else { self.vocabulary[(word & 0xff) as usize] };
            out.extend_from_slice(&word.to_le_bytes());
        }
    }

    /// `size` bytes of half-compressible data.
    pub fn bytes(seed: u64, size: usize) -> Vec<u8> {
        let mut data = BinaryLike::new(seed);
        let mut bytes = Vec::with_capacity(size + Self::BLOCK);
        while bytes.len() < size {
            data.block(false, &mut bytes);
        }
        bytes.truncate(size);
        bytes
    }

    /// `size` bytes of incompressible data (every block random): what goes over the wire
    /// is the size of the file, compressed or not.
    pub fn random(seed: u64, size: usize) -> Vec<u8> {
        let mut data = BinaryLike::new(seed);
        let mut bytes = Vec::with_capacity(size + Self::BLOCK);
        while bytes.len() < size {
            data.block(true, &mut bytes);
        }
        bytes.truncate(size);
        bytes
    }
}

//! One block of a series file: up to [`BLOCK_POINTS`] points of one metric,
//! its steps and times as delta-of-deltas bit-packed at one width per block
//! (the few that do not fit kept aside whole), its values as the XOR of each
//! value's bits with the one before, cut to the bits that differ. The layout
//! is described byte by byte in docs/storage.md ("The series file").
//!
//! Every column is decoded with fixed-width reads, without a branch per bit,
//! so a block decodes at a few nanoseconds a point; each block stands alone
//! (its first point whole), so a reader may decode any one of them.

/// Points in a full block.
pub const BLOCK_POINTS: usize = 4096;

/// What a block holds that the index keeps beside its place: enough to
/// summarise a block without decoding it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSummary {
    /// Points in the block.
    pub count: u16,
    /// The smallest finite value (NaN when none is finite).
    pub min: f64,
    /// The largest finite value (NaN when none is finite).
    pub max: f64,
    /// The first value's bits.
    pub first_bits: u64,
    /// The last value's bits.
    pub last_bits: u64,
    /// The first point's step.
    pub first_step: i64,
    /// The last point's step.
    pub last_step: i64,
}

/// A block that cannot be decoded: the file is damaged (or not one Lab wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Appends the encoded block of `steps`, `times` and `bits` (the same
/// length, 1 to [`BLOCK_POINTS`]) to `out`, and returns its summary.
pub fn encode_block(steps: &[i64], times: &[i64], bits: &[u64], out: &mut Vec<u8>) -> BlockSummary {
    let n = bits.len();
    debug_assert!(n > 0 && n <= BLOCK_POINTS && steps.len() == n && times.len() == n);
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(&steps[0].to_le_bytes());
    out.extend_from_slice(&times[0].to_le_bytes());
    out.extend_from_slice(&bits[0].to_le_bytes());
    if n > 1 {
        encode_ints(steps, out);
        encode_ints(times, out);
        encode_values(bits, out);
    }
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &b in bits {
        let v = f64::from_bits(b);
        if v.is_finite() {
            min = min.min(v);
            max = max.max(v);
        }
    }
    if min > max {
        (min, max) = (f64::NAN, f64::NAN);
    }
    BlockSummary {
        count: u16::try_from(n).unwrap_or(u16::MAX),
        min,
        max,
        first_bits: bits[0],
        last_bits: bits[n - 1],
        first_step: steps[0],
        last_step: steps[n - 1],
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn width_of(z: u64) -> u32 {
    64 - z.leading_zeros()
}

/// Bits an exception costs beside the packed slots: its place and its value.
const EXCEPTION_BITS: u64 = 16 + 64;

/// The delta-of-deltas of `xs` (from the second on; wrapping, so every
/// `i64` comes back), zigzagged, packed at the width that makes the column
/// smallest, the ones wider than it listed apart.
fn encode_ints(xs: &[i64], out: &mut Vec<u8>) {
    let mut dods = Vec::with_capacity(xs.len() - 1);
    let mut prev_delta = 0i64;
    for w in xs.windows(2) {
        let delta = w[1].wrapping_sub(w[0]);
        dods.push(zigzag(delta.wrapping_sub(prev_delta)));
        prev_delta = delta;
    }
    let mut by_width = [0u64; 65];
    for &z in &dods {
        by_width[width_of(z) as usize] += 1;
    }
    let count = dods.len() as u64;
    let (mut best, mut best_cost) = (64u32, u64::MAX);
    let mut wider = count;
    for width in 0..=64u32 {
        wider -= by_width[width as usize];
        let cost = count * u64::from(width) + wider * EXCEPTION_BITS;
        if cost < best_cost {
            (best, best_cost) = (width, cost);
        }
    }
    let exceptions: Vec<(u16, u64)> = dods
        .iter()
        .enumerate()
        .filter(|&(_, &z)| width_of(z) > best)
        .map(|(i, &z)| (u16::try_from(i).unwrap_or(u16::MAX), z))
        .collect();
    out.push(u8::try_from(best).unwrap_or(64));
    out.extend_from_slice(
        &u16::try_from(exceptions.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    let mut packer = Packer::new(out);
    for &z in &dods {
        packer.put(if width_of(z) > best { 0 } else { z }, best);
    }
    packer.finish();
    for (i, z) in exceptions {
        out.extend_from_slice(&i.to_le_bytes());
        out.extend_from_slice(&z.to_le_bytes());
    }
}

/// Each value's bits XOR-ed with the one before: the trailing zero bits all
/// of them share are dropped, and each keeps only its bits from the highest
/// set one down (their number packed at one width, then the bits).
fn encode_values(bits: &[u64], out: &mut Vec<u8>) {
    let xors: Vec<u64> = bits.windows(2).map(|w| w[1] ^ w[0]).collect();
    let shift = xors
        .iter()
        .filter(|&&x| x != 0)
        .map(|x| x.trailing_zeros())
        .min()
        .unwrap_or(0);
    let lens: Vec<u32> = xors.iter().map(|&x| width_of(x >> shift)).collect();
    let len_width = lens
        .iter()
        .map(|&l| width_of(u64::from(l)))
        .max()
        .unwrap_or(0);
    let total_bits: u64 = lens.iter().map(|&l| u64::from(l)).sum();
    out.push(u8::try_from(shift).unwrap_or(0));
    out.push(u8::try_from(len_width).unwrap_or(0));
    out.extend_from_slice(
        &u32::try_from(total_bits.div_ceil(8))
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    let mut packer = Packer::new(out);
    for &l in &lens {
        packer.put(u64::from(l), len_width);
    }
    packer.finish();
    let mut packer = Packer::new(out);
    for (&x, &l) in xors.iter().zip(&lens) {
        packer.put(x >> shift, l);
    }
    packer.finish();
}

/// Writes values of given widths, least significant bit first.
struct Packer<'a> {
    out: &'a mut Vec<u8>,
    acc: u128,
    filled: u32,
}

impl<'a> Packer<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            acc: 0,
            filled: 0,
        }
    }

    #[inline]
    fn put(&mut self, value: u64, width: u32) {
        if width == 0 {
            return;
        }
        self.acc |= u128::from(value & mask(width)) << self.filled;
        self.filled += width;
        while self.filled >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.filled -= 8;
        }
    }

    fn finish(self) {
        if self.filled > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

#[inline]
fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// `width` bits of `buf` from bit `pos` on (least significant first).
/// `buf` is read past its data only where it holds bytes; missing bytes
/// read as zero.
#[inline]
fn read_bits(buf: &[u8], pos: usize, width: u32) -> u64 {
    let byte = pos / 8;
    let word = if let Some(b) = buf.get(byte..byte + 16) {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        u128::from_le_bytes(a)
    } else {
        let mut a = [0u8; 16];
        let rest = buf.get(byte..).unwrap_or(&[]);
        a[..rest.len()].copy_from_slice(rest);
        u128::from_le_bytes(a)
    };
    ((word >> (pos % 8)) as u64) & mask(width)
}

/// Reads a block's bytes in order, every read checked.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(n).ok_or(Malformed)?;
        let s = self.buf.get(self.at..end).ok_or(Malformed)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

/// Which columns to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// Steps, times and values.
    All,
    /// Steps and values (times are skipped, not decoded).
    StepsAndValues,
    /// Values alone (steps and times are skipped, not decoded).
    Values,
}

/// A decoded block's columns, reused from block to block.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Steps (empty for [`Columns::Values`]).
    pub steps: Vec<i64>,
    /// Times, nanoseconds since the epoch (empty for [`Columns::Values`]).
    pub times: Vec<i64>,
    /// Values' bits.
    pub bits: Vec<u64>,
}

/// Decodes `block` (its bytes without the checksum) into `into`, replacing
/// what it held; `expected` is the count the index gives.
pub fn decode_block(
    block: &[u8],
    expected: u16,
    columns: Columns,
    into: &mut Decoded,
) -> Result<(), Malformed> {
    into.steps.clear();
    into.times.clear();
    into.bits.clear();
    let mut c = Cursor { buf: block, at: 0 };
    let n = c.u16()?;
    if n == 0 || n != expected || usize::from(n) > BLOCK_POINTS {
        return Err(Malformed);
    }
    let n = usize::from(n);
    let step0 = c.u64()? as i64;
    let time0 = c.u64()? as i64;
    let bits0 = c.u64()?;
    let want_steps = columns != Columns::Values;
    let want_times = columns == Columns::All;
    if want_steps {
        into.steps.push(step0);
    }
    if want_times {
        into.times.push(time0);
    }
    into.bits.push(bits0);
    if n > 1 {
        decode_ints(&mut c, n, step0, want_steps.then_some(&mut into.steps))?;
        decode_ints(&mut c, n, time0, want_times.then_some(&mut into.times))?;
        decode_values(&mut c, n, bits0, &mut into.bits)?;
    }
    if c.at != block.len() {
        return Err(Malformed);
    }
    Ok(())
}

fn decode_ints(
    c: &mut Cursor<'_>,
    n: usize,
    first: i64,
    into: Option<&mut Vec<i64>>,
) -> Result<(), Malformed> {
    let width = u32::from(c.u8()?);
    let exceptions = usize::from(c.u16()?);
    if width > 64 {
        return Err(Malformed);
    }
    let packed = c.take(((n - 1) * width as usize).div_ceil(8))?;
    let listed = c.take(exceptions * 10)?;
    let Some(out) = into else {
        return Ok(());
    };
    // The delta-of-deltas go in place first, the exceptions over them, and
    // they are summed up in place: no buffer of their own.
    let base = out.len();
    if width == 0 {
        // A constant delta (a step counted one by one): nothing to unpack.
        out.resize(base + n - 1, 0);
    } else {
        out.extend((0..n - 1).map(|i| read_bits(packed, i * width as usize, width) as i64));
    }
    for e in listed.chunks_exact(10) {
        let i = usize::from(u16::from_le_bytes([e[0], e[1]]));
        let mut a = [0u8; 8];
        a.copy_from_slice(&e[2..]);
        *out.get_mut(base + i)
            .filter(|_| i < n - 1)
            .ok_or(Malformed)? = u64::from_le_bytes(a) as i64;
    }
    let (mut value, mut delta) = (first, 0i64);
    for x in &mut out[base..] {
        delta = delta.wrapping_add(unzigzag(*x as u64));
        value = value.wrapping_add(delta);
        *x = value;
    }
    Ok(())
}

fn decode_values(
    c: &mut Cursor<'_>,
    n: usize,
    first: u64,
    out: &mut Vec<u64>,
) -> Result<(), Malformed> {
    let shift = u32::from(c.u8()?);
    let len_width = u32::from(c.u8()?);
    let bytes = c.u32()? as usize;
    if shift > 63 || len_width > 7 {
        return Err(Malformed);
    }
    let lens = c.take(((n - 1) * len_width as usize).div_ceil(8))?;
    let data = c.take(bytes)?;
    let mut pos = 0usize;
    let mut prev = first;
    out.reserve(n - 1);
    for i in 0..n - 1 {
        let len = read_bits(lens, i * len_width as usize, len_width) as u32;
        if len > 64 - shift {
            return Err(Malformed);
        }
        prev ^= read_bits(data, pos, len) << shift;
        pos += len as usize;
        out.push(prev);
    }
    if pos.div_ceil(8) != bytes {
        return Err(Malformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(steps: &[i64], times: &[i64], bits: &[u64]) -> usize {
        let mut out = Vec::new();
        let summary = encode_block(steps, times, bits, &mut out);
        let mut d = Decoded::default();
        decode_block(&out, summary.count, Columns::All, &mut d).unwrap();
        assert_eq!(d.steps, steps);
        assert_eq!(d.times, times);
        assert_eq!(d.bits, bits);
        decode_block(&out, summary.count, Columns::Values, &mut d).unwrap();
        assert!(d.steps.is_empty());
        assert_eq!(d.bits, bits);
        decode_block(&out, summary.count, Columns::StepsAndValues, &mut d).unwrap();
        assert!(d.times.is_empty());
        assert_eq!((d.steps.as_slice(), d.bits.as_slice()), (steps, bits));
        out.len()
    }

    #[test]
    fn odd_values_come_back_bit_for_bit() {
        let values = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff8_0000_dead_beef),
            f64::from_bits(0xfff0_0000_0000_0001),
            f64::MIN_POSITIVE,
            f64::MAX,
            1.0,
        ];
        let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        let steps = [i64::MIN, i64::MAX, -1, 0, 5, 5, 3, i64::MIN, 7];
        let times = [0, 0, 0, i64::MAX, i64::MIN, 1, 1, 1, 2];
        round_trip(&steps, &times, &bits);
    }

    #[test]
    fn a_regular_series_is_small() {
        let n = BLOCK_POINTS;
        let steps: Vec<i64> = (0..n as i64).collect();
        let times: Vec<i64> = (0..n as i64)
            .map(|i| 1_700_000_000_000_000_000 + i * 1000)
            .collect();
        let bits: Vec<u64> = vec![1.5f64.to_bits(); n];
        let bytes = round_trip(&steps, &times, &bits);
        assert!(bytes < 64, "{bytes} bytes for a constant series");
    }

    #[test]
    fn a_damaged_block_is_refused_not_misread() {
        let steps: Vec<i64> = (0..100).collect();
        let bits: Vec<u64> = (0..100).map(|i| (f64::from(i) * 0.1).to_bits()).collect();
        let mut out = Vec::new();
        encode_block(&steps, &steps, &bits, &mut out);
        let mut d = Decoded::default();
        for cut in 0..out.len() {
            assert_eq!(
                decode_block(&out[..cut], 100, Columns::All, &mut d),
                Err(Malformed),
                "cut at {cut}"
            );
        }
        assert_eq!(decode_block(&out, 99, Columns::All, &mut d), Err(Malformed));
    }
}

//! The scan's bulk payload: one range per beam, metres, `f32` little-endian. The only code
//! that knows this layout; the sensor, the simulator, the planner and the load tools read and
//! write ranges through it.

/// Bytes per beam in a scan payload.
pub const RANGE_BYTES: usize = 4;

/// Payload bytes of a scan of `beams` beams.
pub const fn ranges_len(beams: usize) -> usize {
    beams * RANGE_BYTES
}

/// A scan payload read in place (a borrow of the received, possibly shared-memory, buffer).
#[derive(Debug, Clone, Copy)]
pub struct ScanRanges<'a>(&'a [u8]);

impl<'a> ScanRanges<'a> {
    /// A trailing partial beam is ignored (the codec refuses such payloads before this).
    pub fn new(payload: &'a [u8]) -> ScanRanges<'a> {
        ScanRanges(payload)
    }

    /// Number of beams.
    pub fn len(&self) -> usize {
        self.0.len() / RANGE_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Range of beam `i`, metres.
    #[inline]
    pub fn get(&self, i: usize) -> Option<f32> {
        match self.0.get(RANGE_BYTES * i..RANGE_BYTES * i + RANGE_BYTES) {
            Some(&[b0, b1, b2, b3]) => Some(f32::from_le_bytes([b0, b1, b2, b3])),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(RANGE_BYTES)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Writes `ranges` into a payload buffer of [`ranges_len`] bytes (e.g. the loaned SHM region
/// the publisher hands out); returns how many beams were written. Stops at whichever of the
/// two runs out first.
pub fn write_ranges(dst: &mut [u8], ranges: impl IntoIterator<Item = f32>) -> usize {
    dst.chunks_exact_mut(RANGE_BYTES)
        .zip(ranges)
        .map(|(d, r)| d.copy_from_slice(&r.to_le_bytes()))
        .count()
}

/// A scan payload built from ranges (tests, tools and benchmarks; the sensor writes in place).
pub fn ranges_to_bytes(ranges: &[f32]) -> Vec<u8> {
    let mut v = vec![0; ranges_len(ranges.len())];
    write_ranges(&mut v, ranges.iter().copied());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = [0.5f32, 8.0, f32::INFINITY, 1e-3];
        let bytes = ranges_to_bytes(&r);
        assert_eq!(bytes.len(), ranges_len(4));
        let view = ScanRanges::new(&bytes);
        assert_eq!(view.len(), 4);
        assert_eq!(view.iter().collect::<Vec<_>>(), r);
        assert_eq!(view.get(1), Some(8.0));
        assert_eq!(view.get(4), None);
        // Little-endian on the wire whatever the host.
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0x41]);
    }

    #[test]
    fn partial_beams_and_short_buffers() {
        assert_eq!(ScanRanges::new(&[1, 2, 3, 4, 5]).len(), 1);
        let mut dst = [0u8; 8];
        assert_eq!(write_ranges(&mut dst, [1.0, 2.0, 3.0]), 2);
    }
}

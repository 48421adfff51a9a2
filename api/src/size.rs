//! Sizes for people, in binary units with one decimal (`1.2 GiB`, `532.0 MiB`, `812 B`): one
//! formatter for the verification controller's Events and conditions and for caib, so a size
//! reads the same wherever it is shown.

/// `bytes` in B, KiB, MiB, GiB or TiB.
pub fn human(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn binary_units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human(1_234_567_890), "1.1 GiB");
        assert_eq!(human(2_147_483_648), "2.0 GiB");
    }
}

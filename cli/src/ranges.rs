//! Value parsers for numeric options whose nonsense values would otherwise panic or abort deep
//! inside a command (`--batch-size 0`, `--idle-exit nan`, `--rate 1e-30`): clap refuses them
//! with the option's name before anything runs.

use std::time::Duration;

use clap::builder::RangedU64ValueParser;

/// A count of at least one (`--batch-size`, `--epochs`, `--bits`, `--events` ...).
pub(crate) fn at_least_one() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(1..)
}

/// Parses a float and checks it with `accept`, which says what is wrong when it refuses.
fn float_where(text: &str, accept: impl Fn(f64) -> bool, wanted: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if accept(value) {
        Ok(value)
    } else {
        Err(format!("{value} is not {wanted}"))
    }
}

/// Seconds that make a [`Duration`] greater than zero (`--idle-exit`).
pub(crate) fn positive_seconds(text: &str) -> Result<f64, String> {
    let a_duration = |seconds| Duration::try_from_secs_f64(seconds).is_ok_and(|d| !d.is_zero());
    float_where(
        text,
        a_duration,
        "a positive number of seconds a clock can hold",
    )
}

/// Events per second: 0 (as fast as possible) or a rate whose spacing between events a clock
/// can hold (`--rate`).
pub(crate) fn events_per_second(text: &str) -> Result<f64, String> {
    let paced = |rate: f64| {
        rate.is_finite() && rate > 0.0 && Duration::try_from_secs_f64(1.0 / rate).is_ok()
    };
    float_where(
        text,
        |rate| rate == 0.0 || paced(rate),
        "0 (as fast as possible) or a positive rate a clock can pace",
    )
}

/// A finite number greater than zero (`--learning-rate`).
pub(crate) fn positive(text: &str) -> Result<f64, String> {
    float_where(
        text,
        |v| v.is_finite() && v > 0.0,
        "a finite number greater than 0",
    )
}

/// A finite number of at least zero (`--beta`, `--capacity`, weights).
pub(crate) fn non_negative(text: &str) -> Result<f64, String> {
    float_where(
        text,
        |v| v.is_finite() && v >= 0.0,
        "a finite number of at least 0",
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Options {
        #[arg(long, value_parser = super::at_least_one())]
        count: Option<usize>,
        #[arg(long, value_parser = super::positive_seconds)]
        seconds: Option<f64>,
        #[arg(long, value_parser = super::events_per_second)]
        rate: Option<f64>,
        #[arg(long, value_parser = super::positive)]
        positive: Option<f64>,
        #[arg(long, value_parser = super::non_negative)]
        non_negative: Option<f64>,
    }

    fn parses(option: &str, value: &str) -> bool {
        Options::try_parse_from(["x", &format!("--{option}={value}")]).is_ok()
    }

    #[test]
    fn nonsense_values_are_refused_and_sensible_ones_kept() {
        let cases: [(&str, &[&str], &[&str]); 5] = [
            ("count", &["1", "128"], &["0", "-1", "1e3", "x"]),
            (
                "seconds",
                &["0.5", "30", "86400"],
                &["0", "-1", "nan", "inf", "1e300"],
            ),
            (
                "rate",
                &["0", "1e-3", "1e6"],
                &["-1", "nan", "inf", "1e-30", "-0.5"],
            ),
            ("positive", &["1e-3", "2"], &["0", "-1e-3", "nan", "inf"]),
            ("non-negative", &["0", "0.02"], &["-0.1", "nan", "inf"]),
        ];
        for (option, good, bad) in cases {
            for value in good {
                assert!(parses(option, value), "--{option}={value} refused");
            }
            for value in bad {
                assert!(!parses(option, value), "--{option}={value} accepted");
            }
        }
    }
}

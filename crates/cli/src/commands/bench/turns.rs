//! Measurements that take turns: a figure and its ceiling are each measured in several short
//! rounds, interleaved, instead of one long run after the other.

use std::future::Future;

/// Runs `measure` for each stage, `rounds` times, reversing the order every other round
/// (A B, B A, A B, ...): a slow spell of the machine (another tenant, the broker's own
/// housekeeping) then falls on every stage instead of on whichever ran through it, and a drift
/// over the run cancels out. Gives each stage's figures, in the order of `stages`; the first
/// failure ends the measurement. `measure` gets the stage and the round, as "2/4".
pub(super) async fn in_turns<S, T, F, Fut, const N: usize>(
    rounds: usize,
    stages: [S; N],
    mut measure: F,
) -> anyhow::Result<[Vec<T>; N]>
where
    S: Copy,
    F: FnMut(S, String) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut figures: [Vec<T>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..N).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let figure = measure(stages[index], format!("{}/{rounds}", round + 1)).await?;
            figures[index].push(figure);
        }
    }
    Ok(figures)
}

/// The rate over equal rounds, from each round's rate: the total count over the total time,
/// which is the harmonic mean of the rates.
pub(super) fn overall_rate(rates: &[f64]) -> f64 {
    rates.len() as f64 / rates.iter().map(|rate| 1.0 / rate).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rounds_alternate_so_each_stage_goes_first_as_often() {
        let mut order = Vec::new();
        let figures = in_turns(4, ["a", "b", "c"], |stage, round| {
            order.push(format!("{stage} {round}"));
            async move { anyhow::Ok(round) }
        })
        .await
        .unwrap();
        assert_eq!(
            order,
            [
                "a 1/4", "b 1/4", "c 1/4", "c 2/4", "b 2/4", "a 2/4", "a 3/4", "b 3/4", "c 3/4",
                "c 4/4", "b 4/4", "a 4/4",
            ]
        );
        let rounds = ["1/4", "2/4", "3/4", "4/4"];
        assert_eq!(figures, [rounds, rounds, rounds]);
    }

    #[tokio::test]
    async fn a_failed_turn_ends_the_measurement() {
        let mut turns = 0;
        let outcome = in_turns(3, [true, false], |fails, _| {
            turns += 1;
            async move {
                anyhow::ensure!(!fails, "the worker fell over");
                anyhow::Ok(())
            }
        })
        .await;
        assert_eq!(outcome.unwrap_err().to_string(), "the worker fell over");
        assert_eq!(turns, 1, "no turn runs after the failure");
    }

    #[test]
    fn the_overall_rate_is_count_over_time() {
        // 100 tasks at 100/s (1 s), then 100 at 50/s (2 s): 200 tasks in 3 s.
        assert!((overall_rate(&[100.0, 50.0]) - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(overall_rate(&[42.0]), 42.0);
    }
}

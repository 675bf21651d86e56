//! Thrift definitions written inline, a `where`, a derived column, an hourly window with keys,
//! and a record that fails its step going to `rejected`.
pipe_macros::pipeline! {
    namespace shop

    enum Channel { WEB = 1, STORE = 2 }

    /** One purchase. */
    struct Purchase {
      1: required string customer (pii = "user.unique_id")
      2: required i64    at       (timestamp = "millis")
      3: required double amount   (pii = "user.financial")
      4: optional Channel channel
      5: required i64    items
    }

    source purchases: Purchase {
      event_time = at
      batch      = files("purchases.jsonl", format = json)
    }

    stream priced = purchases
      | where amount > 0
      | derive { unit = amount / items }

    stream hourly = priced
      | window tumbling(1h)
      | group by channel
      | aggregate { n = count(), total = sum(amount), dearest = max(unit) }

    sink report = stdout(format = json) {
      allow "user.financial" as raw
    }

    hourly -> report
    // A rejected record's raw text holds the customer and the amount.
    rejected -> stdout(format = json) { purpose = "essential.service" allow "user" as raw }
}

const HOUR: i64 = 3_600_000;

fn main() {
    let p = |customer: &str, at: i64, amount: f64, channel: Option<shop::Channel>, items: i64| shop::Purchase {
        customer: customer.into(),
        at,
        amount,
        channel,
        items,
    };
    let web = Some(shop::Channel::WEB);
    let inputs = shop::Inputs {
        purchases: vec![
            p("a", 10, 30.0, web, 3),
            p("b", 20, 12.0, web, 1),
            p("c", HOUR + 5, 8.0, None, 2),
            p("d", 30, -1.0, web, 1),
            // A division by zero items: `derive` fails, the record goes to `rejected`.
            p("e", 40, 5.0, web, 0),
        ],
    };
    let out = shop::run_batch(inputs).expect("the pipeline runs");
    let mut rows = out.report.clone();
    rows.sort_by_key(|r| r.window_start);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].window_start, rows[0].window_end), (0, HOUR));
    assert_eq!(rows[0].channel, web);
    assert_eq!((rows[0].n, rows[0].total, rows[0].dearest), (2, 42.0, Some(12.0)));
    assert_eq!((rows[1].window_start, rows[1].channel, rows[1].n), (HOUR, None, 1));
    assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
    assert_eq!(out.rejected[0].source, "purchases");
    assert_eq!(out.rejected[0].position, "purchases[4]");
    assert!(out.rejected[0].reason.contains("division by zero"), "{}", out.rejected[0].reason);
    assert!(out.rejected[0].raw.contains("\"customer\":\"e\""), "{}", out.rejected[0].raw);
}

"""Splits the real Lending Club loans (../../lending/data/loans.csv, itself
../shared/data/loans_full_schema.csv) by the month they were issued, keeping the columns this
example reads: January and February 2018 are the training data (train.csv), March 2018 the
partner file scored (score.csv). drifted.csv is the March file with every debt-to-income ratio
shifted up by 8 points: the drift the validation must catch. `issued` is the first day of the
issue month (the CSV has only the month). Run once; the outputs are committed."""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "lending", "data", "loans.csv")
COLUMNS = ["rownames", "state", "annual_income", "debt_to_income", "months_since_last_delinq",
           "inquiries_last_12m", "total_credit_limit", "loan_amount", "term", "grade", "loan_status"]
MONTHS = {"Jan-2018": "2018-01-01", "Feb-2018": "2018-02-01", "Mar-2018": "2018-03-01"}


def write(name, rows, shift=0.0):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS + ["issued"])
        for r in rows:
            out = [r[c] for c in COLUMNS]
            if shift and r["debt_to_income"]:
                out[COLUMNS.index("debt_to_income")] = f"{float(r['debt_to_income']) + shift:.2f}"
            w.writerow(out + [MONTHS[r["issue_month"]]])


with open(SOURCE, newline="") as f:
    rows = list(csv.DictReader(f))
train = [r for r in rows if r["issue_month"] in ("Jan-2018", "Feb-2018")]
score = [r for r in rows if r["issue_month"] == "Mar-2018"]
write("train.csv", train)
write("score.csv", score)
write("drifted.csv", score, shift=8.0)

"""Writes data/loans.csv from the Lending Club loans in ../../../../shared/data/: the columns the
example reads, and `issued`, the first day of `issue_month` ("Mar-2018" -> "2018-03-01") as an
ISO date, the label's event time. Run from this folder: python3 make_loans.py"""

import csv
from datetime import datetime

SRC = "../../../../shared/data/loans_full_schema.csv"
COLUMNS = ["loan_id", "state", "grade", "loan_amount", "interest_rate", "annual_income", "issued", "loan_status"]

with open(SRC, newline="") as f, open("loans.csv", "w", newline="") as out:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in csv.DictReader(f):
        issued = datetime.strptime("01-" + r["issue_month"], "%d-%b-%Y").strftime("%Y-%m-%d")
        row = [r["rownames"], r["state"], r["grade"], r["loan_amount"], r["interest_rate"],
               r["annual_income"], issued, r["loan_status"]]
        assert not any("," in v or '"' in v for v in row), row
        w.writerow(row)

struct Money { 1: required double amount }

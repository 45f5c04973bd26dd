// Stands in for a `python3 -m verl.model_merger` that fails (launcher tests).
process.exit(1);

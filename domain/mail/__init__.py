"""Reading customer email: MIME parsing, threading keys, quoted history, automated mail."""

"""HTTP for a hostile network: the leaf every transfer (catalogs, signatures, models) goes
through — limits, the slow-retrieval watchdog, redirects that keep credentials at home."""

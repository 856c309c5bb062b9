"""Use cases between the screens and the ports: identify, redeem, buy, spin, restock."""

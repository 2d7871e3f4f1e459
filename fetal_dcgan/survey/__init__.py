"""Blinded rating study: build a deck, serve it to raters, analyse the ratings."""

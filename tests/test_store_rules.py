"""The storing rules of db/mailin/store.py, each asserted so that a one-line slip fails it."""

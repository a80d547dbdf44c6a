"""Fine-tuning and evaluation of qabot's extractive reader (SQuAD-style span extraction).

Depends on nothing in ``bot/`` except the pure SQuAD metric functions; the bot depends only on the
exported ``models/reader`` folder.
"""

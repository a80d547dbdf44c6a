"""Bring your own article: URLs, HTML, PDF, Markdown and text files become indexed articles.

``fetch`` downloads safely (SSRF guard, limits), ``extract`` finds the article's text and metadata,
``library`` records which chat may see which article, and ``service`` ties them together behind
``ingest_url`` / ``ingest_file`` / ``ingest_bytes`` (used by ``qabot index add`` and the Telegram bot).
"""

from bot.ingest.service import IngestResult, Quota, forget, ingest_bytes, ingest_file, ingest_url, is_url

__all__ = ["IngestResult", "Quota", "forget", "ingest_bytes", "ingest_file", "ingest_url", "is_url"]

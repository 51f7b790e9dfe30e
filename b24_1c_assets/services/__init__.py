"""The product's HTTP service beside the Dagster location (`python -m b24_1c_assets.services`): the credit gate,
1C export intake, the Bitrix24 event receiver and the review page. It never opens the working DuckDB file."""

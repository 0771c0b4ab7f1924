"""Products a system can run (the documented ``products`` module)."""

from airflow_puddle.domain.products import ALL_PRODUCTS, PRODUCT_DAI, PRODUCT_H2O3, Product

__all__ = ["ALL_PRODUCTS", "PRODUCT_DAI", "PRODUCT_H2O3", "Product"]

"""Products a system can run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """A product: ``label`` for people, ``id`` for the API."""

    label: str
    product_id: str

    @property
    def id(self) -> str:
        """The product's id as the API uses it, e.g. ``dai``."""
        return self.product_id


PRODUCT_DAI = Product("Driverless AI", "dai")
PRODUCT_H2O3 = Product("H2O-3", "h2o3")
ALL_PRODUCTS = (PRODUCT_DAI, PRODUCT_H2O3)

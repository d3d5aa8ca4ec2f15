"""The bundled demo shop: a small JSON API that is slow on purpose (see surge.demo.app)."""

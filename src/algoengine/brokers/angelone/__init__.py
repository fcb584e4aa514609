"""Angel One (SmartAPI): the broker adapter and, for tests and trying live mode here, a fake
Angel One server (:mod:`algoengine.brokers.angelone.fake_server`)."""

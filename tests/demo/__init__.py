"""`make demo`: the whole loop on a local world (sync, rotate, restart, rollout complete), built
from the test harness so the demo and the tests run the same servers the same way."""

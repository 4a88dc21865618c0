"""How the desk writes dates and times (FORMAT_MODULE_PATH): ISO-like dates, and every time with its zone's
abbreviation (VICIREC_TIME_ZONE), so a time read off a page or a screenshot is never ambiguous."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i:s T"

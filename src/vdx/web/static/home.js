// The landing page: only its texts change with the language (Danish or English).
"use strict";
window.vdx.loadTexts();

#!/bin/sh
# Puts Sales CSV Processor in this user's applications menu and on their desktop, pointing at
# the folder this script is in (wherever it was unpacked). Run it as the user: ./install-shortcut.sh
set -eu
folder=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$folder/SalesCSV" ]; then
  echo "No SalesCSV program next to this script in $folder; run the script from the unpacked folder." >&2
  exit 1
fi
# Written line by line, not with sed: a folder named "R&D" or "a|b" must not change the lines.
entry=$(while IFS= read -r line; do
  case "$line" in
    Exec=*) printf 'Exec="%s/SalesCSV" %%F\n' "$folder" ;;
    Icon=*) printf 'Icon=%s/_internal/desktop_app/resources/icon.png\n' "$folder" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$folder/sales-csv.desktop")
menu="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$menu"
printf '%s\n' "$entry" > "$menu/sales-csv.desktop"
echo "Added to the applications menu: $menu/sales-csv.desktop"
desktop=$(xdg-user-dir DESKTOP 2>/dev/null || echo "$HOME/Desktop")
if [ -d "$desktop" ]; then
  printf '%s\n' "$entry" > "$desktop/sales-csv.desktop"
  chmod +x "$desktop/sales-csv.desktop"
  # GNOME asks before it runs a launcher on the desktop unless it is marked trusted.
  gio set "$desktop/sales-csv.desktop" metadata::trusted true 2>/dev/null || true
  echo "Added to the desktop: $desktop/sales-csv.desktop"
else
  echo "No desktop folder ($desktop), so no desktop icon was made; the menu entry is there."
fi

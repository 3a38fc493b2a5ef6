package admin

import (
	"encoding/csv"
	"net/http"
	"strings"
)

// csvText neutralizes spreadsheet formulas in free text (names, tools,
// reasons: some of it comes from agents): a cell starting with = + - @,
// tab or CR gets a leading apostrophe. Numbers are written as they are.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// writeCSV streams a CSV attachment: header, then the rows rows emits.
func writeCSV(w http.ResponseWriter, filename string, header []string, rows func(emit func([]string) error) error) error {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := rows(cw.Write); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

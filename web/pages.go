package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// formInt64 reads a whole number from a form field; anything else is a 400.
func formInt64(c echo.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.FormValue(name), 10, 64)
	if err != nil {
		return 0, echo.NewHTTPError(http.StatusBadRequest, name+" must be a number.")
	}
	return n, nil
}
